"""Config validation: a JSON schema (workflow/schemas/config.schema.yaml) plus the checks a
schema cannot express.  Runs when the Snakefile is parsed, so a bad config fails before any
job starts.  Every message names the field and the fix.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import yaml

from . import ConfigError, TurbtlError
from .solver import FlowParams, check_timestep

__all__ = ["validate_config", "load_schema", "fill_defaults", "tl_layers", "base_train_snapshots",
           "small_set_size", "train_snapshots", "check_yaml_file", "coerce_scalars", "replicated",
           "REPLICATE_STRIDE", "REPLICATED_SEEDS"]

DEFAULT_SCHEMA = Path(__file__).resolve().parent.parent / "workflow" / "schemas" / "config.schema.yaml"


def load_schema(path=None) -> dict:
    return yaml.safe_load(Path(path or DEFAULT_SCHEMA).read_text())


# --------------------------------------------------------------------------- defaults
def fill_defaults(cfg, schema):
    """Fill schema defaults in place (objects, and each value of a mapping-of-objects)."""
    if not isinstance(cfg, dict) or schema.get("type") != "object":
        return cfg
    for key, sub in schema.get("properties", {}).items():
        if key not in cfg and "default" in sub:
            d = sub["default"]
            cfg[key] = dict(d) if isinstance(d, dict) else (list(d) if isinstance(d, list) else d)
        if key in cfg:
            fill_defaults(cfg[key], sub)
    extra = schema.get("additionalProperties")
    if isinstance(extra, dict):
        for key, val in cfg.items():
            if key not in schema.get("properties", {}):
                fill_defaults(val, extra)
    return cfg


# --------------------------------------------------------------------------- --config strings
_NO = object()


def _scalar(val, typ: str):
    """``val`` as a value of the schema's scalar type ``typ``, or ``_NO`` (left for the schema).

    Strings come from ``--config`` ('5', '1.0e-3', 'true') and from YAML itself: YAML 1.1
    (pyyaml, which Snakemake uses) reads ``1e-3`` without a dot as a string, so a number
    field also takes any string that Python's ``float`` reads.  An integer field takes a
    whole float (``5.0``: JSON Schema would accept it as an integer, and ``range`` would not).
    """
    parsed = val
    if isinstance(val, str):
        try:
            parsed = yaml.safe_load(val)
        except yaml.YAMLError:
            parsed = val
        if isinstance(parsed, str) and typ in ("number", "integer"):
            try:
                parsed = float(parsed)
            except ValueError:
                return _NO
            if not math.isfinite(parsed):
                return _NO
    if typ == "boolean":
        return parsed if isinstance(parsed, bool) else _NO
    if isinstance(parsed, bool) or not isinstance(parsed, (int, float)):
        return _NO
    if typ == "number":
        return float(parsed) if isinstance(val, str) else val
    if typ == "integer" and isinstance(parsed, float):
        return int(parsed) if parsed.is_integer() else _NO
    return parsed


def _array_schema(sub: dict) -> dict | None:
    """The array alternative of a schema node (itself, or one of its oneOf/anyOf), if any."""
    if sub.get("type") == "array":
        return sub
    return next((alt for alt in sub.get("oneOf", []) + sub.get("anyOf", []) if alt.get("type") == "array"), None)


def coerce_scalars(cfg, schema):
    """Parse strings where the schema wants a number, integer or boolean, in place.

    ``snakemake --config "training={epochs: 5}"`` hands nested values over as strings ('5'),
    also inside lists (``--config "transfer={layers: [1, 2]}"``); such a string, a YAML
    ``1e-3`` and a whole float in an integer field become the wanted type (:func:`_scalar`).
    Anything else is left for the schema to reject with its message.
    """
    if isinstance(cfg, dict) and schema.get("type") == "object":
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties")
        for key, val in list(cfg.items()):
            sub = props.get(key, extra if isinstance(extra, dict) else None)
            if sub is None:
                continue
            arr = _array_schema(sub)
            if sub.get("type") in ("number", "integer", "boolean"):
                got = _scalar(val, sub["type"])
                if got is not _NO:
                    cfg[key] = got
            elif isinstance(val, list) and arr is not None and arr.get("items", {}).get("type") in (
                    "number", "integer", "boolean"):
                typ = arr["items"]["type"]
                cfg[key] = [v if (g := _scalar(v, typ)) is _NO else g for v in val]
            else:
                coerce_scalars(val, sub)
    return cfg


# --------------------------------------------------------------------------- schema errors
def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def _subschema(schema, path):
    """The schema node that describes config path ``path`` (best effort)."""
    node = schema
    for p in path:
        if not isinstance(node, dict):
            return {}
        if isinstance(p, int):
            node = node.get("items", {})
        elif p in node.get("properties", {}):
            node = node["properties"][p]
        elif isinstance(node.get("additionalProperties"), dict):
            node = node["additionalProperties"]
        else:
            return {}
    return node


def _message(err, schema) -> str:
    path = list(err.absolute_path)
    where = _where(path)
    if err.validator == "additionalProperties":
        node = _subschema(schema, path)
        allowed = sorted(node.get("properties", {}))
        extra = sorted(set(err.instance) - set(allowed)) if isinstance(err.instance, dict) else []
        return (f"unknown key(s) {', '.join(map(repr, extra))} in {where}; "
                f"fix: remove or correct them (allowed keys: {', '.join(allowed)})")
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        desc = _subschema(schema, path + [missing]).get("description", "")
        return f"missing key {where}.{missing}; fix: add it ({desc})" if path else \
            f"missing top-level key '{missing}'; fix: add it ({desc})"
    if "propertyNames" in err.schema_path:  # jsonschema reports the failing check (pattern)
        return (f"bad flow name {err.instance!r} in {where}; fix: "
                + _subschema(schema, path).get("propertyNames", {}).get("description", "rename it"))
    node = _subschema(schema, path)
    desc = node.get("description", "see workflow/schemas/config.schema.yaml")
    return f"{where} = {err.instance!r} is invalid ({err.message}); fix: it must be {desc}"


# --------------------------------------------------------------------------- helpers
def tl_layers(cfg) -> list[int]:
    """The 1-based layers the sweep re-trains."""
    layers = cfg["transfer"]["layers"]
    depth = cfg["network"]["depth"]
    return list(range(1, depth + 1)) if layers == "all" else sorted(int(i) for i in layers)


def train_snapshots(sys_cfg) -> int:
    train_members = sys_cfg["members"] - sys_cfg["val_members"] - sys_cfg["test_members"]
    return train_members * sys_cfg["snapshots_per_member"]


def base_train_snapshots(cfg) -> int:
    return train_snapshots(cfg["systems"][cfg["base"]])


def small_set_size(cfg) -> int:
    """Snapshots in the small target set: fraction x base training snapshots (at least 1)."""
    return max(1, int(round(cfg["transfer"]["fraction"] * base_train_snapshots(cfg))))


def _is_multiple(a, b, tol=1e-6) -> bool:
    r = a / b
    return abs(r - round(r)) < tol * max(1.0, abs(r))


class _DupLoader(yaml.SafeLoader):
    pass


def _construct_mapping(loader, node, deep=False):
    seen = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"duplicate key {key!r} (line {key_node.start_mark.line + 1} and line {seen[key]}) in "
                f"{node.start_mark.name}; fix: give each flow (and each setting) one unique name")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


_DupLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)


def _yaml_fix(err, text: str) -> str:
    """The likely fix for a YAML syntax error, from pyyaml's problem and context."""
    problem, context = err.problem or "", err.context or ""
    ctx_line = err.context_mark.line + 1 if err.context_mark else None
    line = err.problem_mark.line if err.problem_mark else 0
    # an unclosed quote swallows the lines after it, so the parser fails far below it
    try:
        for tok in yaml.scan(text):
            if tok.start_mark.line >= line:
                break
            if isinstance(tok, yaml.ScalarToken) and tok.style in ("'", '"') and tok.end_mark.line > tok.start_mark.line:
                return (f"close the quote ({tok.style}) opened at line {tok.start_mark.line + 1}, column "
                        f"{tok.start_mark.column + 1}: its value runs on to line {tok.end_mark.line + 1}")
    except yaml.YAMLError:
        pass
    if "\\t" in problem or "tab character" in problem:  # pyyaml writes a tab as the two characters \t
        return "indent with spaces; YAML does not allow tabs"
    if "quoted scalar" in context:
        return f"close the quote opened at line {ctx_line}"
    if "flow sequence" in context:
        return f"close the '[' of line {ctx_line} with ']' and separate its items with ', '"
    if "flow mapping" in context:
        return f"close the '{{' of line {ctx_line} with '}}' and separate its items with ', '"
    if "mapping values are not allowed" in problem or "block end" in problem:
        return ("indent this key exactly like the other keys of its section (spaces only), "
                "and quote a value that contains ': '")
    return ("correct the YAML at this line or just above it: indentation with spaces, closed brackets "
            "and quotes, a space after each ':'")


def _yaml_error(path, err, text: str) -> ConfigError:
    if not isinstance(err, yaml.MarkedYAMLError) or err.problem_mark is None:
        return ConfigError(f"config file {path} is not valid YAML ({err}); fix: correct its syntax")
    m = err.problem_mark
    where = f"YAML syntax error in config file {path}, line {m.line + 1}, column {m.column + 1}: {err.problem}"
    if err.context and err.context_mark is not None and err.context_mark.line != m.line:
        c = err.context_mark
        where += f" ({err.context} that starts at line {c.line + 1}, column {c.column + 1})"
    return ConfigError(f"{where}; fix: {_yaml_fix(err, text)}")


def check_yaml_file(path) -> dict:
    """Fail with file, line and fix on a YAML syntax error (Snakemake's own message names neither),
    on a file that is not a mapping of keys, and on duplicate keys (e.g. two flows with one name),
    which plain YAML silently merges.  Returns the parsed config.
    """
    try:
        with open(path, encoding="utf-8") as fh:  # a stream, so that the marks carry the file name
            data = yaml.load(fh, Loader=_DupLoader)
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (full path {Path(path).absolute()}); fix: run snakemake "
                          "in the directory that holds it or give the right path with --configfile") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"config file {path} is not UTF-8 text ({e}); fix: save it as UTF-8") from None
    except yaml.YAMLError as e:
        text = Path(path).read_text(encoding="utf-8")
        try:  # Snakemake reads a config as JSON first: valid JSON is fine
            data = json.loads(text)
        except ValueError:
            raise _yaml_error(path, e, text) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} holds {'nothing' if data is None else 'a ' + type(data).__name__}, "
                          "not a mapping of keys; fix: write it like config.yaml (`key: value` lines at the top level)")
    return data


def _merge(into: dict, new: dict) -> dict:
    """Merge nested dicts the way Snakemake merges several --configfile files."""
    for k, v in new.items():
        if isinstance(v, dict) and isinstance(into.get(k), dict):
            _merge(into[k], v)
        else:
            into[k] = v
    return into


def main(argv=None) -> int:
    """``python -m turbtl.config FILE [FILE ...]``: check config files (YAML syntax with file and line,
    then the schema and cross-field checks of the merged config) without running Snakemake."""
    import sys

    files = list(sys.argv[1:] if argv is None else argv) or ["config.yaml"]
    try:
        cfg = {}
        for f in files:
            _merge(cfg, check_yaml_file(f))
        validate_config(cfg)
    except ConfigError as e:
        print(f"ConfigError: {e}", file=sys.stderr)
        return 1
    print(f"config OK: {' + '.join(files)}")
    return 0


#: replicate r shifts every seed of the run by r times this (config key ``replicate``): far
#: above the small seeds a config gives its flows, so that no replicate's flow reuses another
#: flow's or replicate's initial condition
REPLICATE_STRIDE = 1000
#: the seeds a replicate shifts: (section, key) of the config, and every ``systems.<name>.seed``
REPLICATED_SEEDS = (("training", "seed"), ("transfer", "subset_seed"))


def replicated(cfg: dict, seed: int) -> int:
    """The seed that a job of replicate ``cfg["replicate"]`` uses for the config's ``seed``:
    ``seed + REPLICATE_STRIDE * replicate`` (replicate 0, the default, is the config as
    written).  A replicate repeats the whole experiment, new DNS trajectories, a new base
    network and new small-set draws, so that the spread of the verdict over replicates
    measures what the TL seeds' intervals hold fixed (README, Replicates)."""
    return int(seed) + REPLICATE_STRIDE * int(cfg.get("replicate", 0))


# --------------------------------------------------------------------------- main entry
def validate_config(cfg: dict, schema_path=None, *, config_files=()) -> dict:
    """Validate ``cfg`` in place (defaults filled).  Raises ConfigError listing every problem."""
    import jsonschema

    for f in config_files:
        check_yaml_file(f)
    schema = load_schema(schema_path)
    coerce_scalars(cfg, schema)
    fill_defaults(cfg, schema)
    problems = _name_types(cfg)
    if not problems:
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
        problems = [_message(e, schema) for e in errors]
    if not problems:
        problems = _cross_checks(cfg)
    if problems:
        if any(q.startswith("missing top-level key") for q in problems) and any(
                Path(f).name != "config.yaml" for f in config_files):
            problems.append("note: a --configfile REPLACES config.yaml, so it must be a complete config; fix: to "
                            "change only a few keys, give config.yaml first: --configfile config.yaml "
                            + " ".join(str(f) for f in config_files if Path(f).name != "config.yaml"))
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return cfg


def _name_types(cfg) -> list[str]:
    """Flow names that YAML read as numbers or booleans (``3000:``, ``no:``), before the schema,
    whose name pattern applies to strings only."""
    p = []
    systems = cfg.get("systems")
    names = list(systems) if isinstance(systems, dict) else []
    names += [t for t in cfg.get("targets") or [] if not isinstance(t, str)] if isinstance(cfg.get("targets"), list) else []
    if "base" in cfg and not isinstance(cfg["base"], str):
        names.append(cfg["base"])
    for name in dict.fromkeys(n for n in names if not isinstance(n, str)):
        if isinstance(name, bool):
            what, eg = "a boolean (YAML 1.1 reads yes, no, on, off, true and false so)", "quote it, or rename it"
        else:
            what, eg = "a number", f"e.g. 'flow{name}'"
        p.append(f"flow name {name!r} is read by YAML as {what}, not a name; fix: flow names start with a letter "
                 f"and use only letters, digits, '_' and '-' ({eg}), under `systems:` and in `base`/`targets`")
    return p


def _cross_checks(cfg) -> list[str]:
    p = []
    systems = cfg["systems"]
    names = sorted(systems)
    if cfg["base"] not in systems:
        p.append(f"base = {cfg['base']!r} is not a defined system; fix: use one of {names} "
                 "or add it under `systems:`")
    for t in cfg["targets"]:
        if t not in systems:
            p.append(f"targets: {t!r} is not a defined system; fix: add systems.{t} or remove it "
                     f"from `targets` (defined: {names})")
    dups = sorted({t for t in cfg["targets"] if cfg["targets"].count(t) > 1})
    if dups:
        p.append(f"targets: {dups} listed more than once; fix: list each target once")
    if cfg["base"] in cfg["targets"]:
        p.append(f"targets: the base flow {cfg['base']!r} is also a target; fix: remove it from `targets`")
    bad_grid = set()  # flows whose grids are wrong: their LES time step is not checked (noise)
    for name, s in systems.items():
        w = f"systems.{name}"
        n, m = s["n_dns"], s["n_les"]
        problems_before = len(p)
        if n % 2:
            eg = m * max(2, round(n / m)) if m % 2 == 0 and m < n else n + 1
            p.append(f"{w}.n_dns = {n} is odd; fix: use an even grid size (e.g. {eg})")
        even = [d for d in range(2, n // 2 + 1, 2) if n % d == 0] if n % 2 == 0 else []
        if m % 2:
            eg = f"{min(even, key=lambda d: (abs(d - m), -d))}, a divisor of n_dns = {n}" if even else m + 1
            p.append(f"{w}.n_les = {m} is odd; fix: use an even grid size (e.g. {eg})")
        if m > n:
            p.append(f"{w}.n_les = {m} is larger than n_dns = {n}; fix: the LES grid must be coarser "
                     "than the DNS grid (n_les <= n_dns)")
        elif m % 2 and even:
            pass  # the fix above names an even divisor of n_dns
        elif n % m:
            p.append(f"{w}.n_les = {m} does not divide n_dns = {n}; fix: choose n_dns a multiple of n_les "
                     f"(e.g. {m * max(2, round(n / m))})")
        elif 3 * (m // 2 - 1) >= n:  # the filter's condition (turbtl.filters.sgs_fields): n_les = n_dns here
            p.append(f"{w}.n_les = {m} is too fine for n_dns = {n}: the LES modes must lie inside the DNS's "
                     f"2/3-dealiased band |k| < n_dns/3; fix: make n_dns at least twice n_les (e.g. {2 * m}) "
                     f"or lower n_les to a divisor of n_dns up to {n // 2}")
        if len(p) > problems_before:
            bad_grid.add(name)
        if 3 * s["kf"] >= m:
            p.append(f"{w}.kf = {s['kf']} is not resolved on the LES grid n_les = {m} (need kf < n_les/3 = "
                     f"{m / 3:.1f}); fix: lower kf or raise n_les to more than {3 * s['kf']}")
        if s["val_members"] + s["test_members"] >= s["members"]:
            p.append(f"{w}.members = {s['members']} leaves no training member after val_members = "
                     f"{s['val_members']} and test_members = {s['test_members']}; fix: raise members")
        if not _is_multiple(s["sample_interval"], s["dt"]):
            p.append(f"{w}.sample_interval = {s['sample_interval']} is not a multiple of dt = {s['dt']}; "
                     "fix: make it a whole number of time steps")
        if not _is_multiple(s["spinup_time"], s["dt"]) and s["spinup_time"] > 0:
            p.append(f"{w}.spinup_time = {s['spinup_time']} is not a multiple of dt = {s['dt']}; "
                     "fix: make it a whole number of time steps")
        try:  # the solver's own a-priori screen (laminar velocity bound, Rossby waves under AB2)
            check_timestep(FlowParams.from_config(s, name), cfg["dns"]["cfl_max"], divides=s["sample_interval"])
        except TurbtlError as e:
            p.append(str(e))
    p += _filter_problems(cfg["filter"], {k: v for k, v in systems.items() if k not in bad_grid})
    p += _les_problems(cfg, skip=bad_grid)
    depth = cfg["network"]["depth"]
    if cfg["network"]["kernel_size"] % 2 == 0:
        p.append(f"network.kernel_size = {cfg['network']['kernel_size']} is even; fix: use an odd size such as 5")
    if cfg["transfer"]["layers"] != "all":
        bad = [i for i in cfg["transfer"]["layers"] if not 1 <= i <= depth]
        if bad:
            p.append(f"transfer.layers = {bad} outside 1..network.depth = {depth}; fix: use layer numbers "
                     f"from 1 to {depth} or \"all\"")
    if not p and cfg["base"] in systems:
        n_small = small_set_size(cfg)
        for t in cfg["targets"]:
            if t in systems and train_snapshots(systems[t]) < n_small:
                p.append(f"systems.{t}: its training members hold {train_snapshots(systems[t])} snapshots, fewer "
                         f"than the small TL set of {n_small} (transfer.fraction x base training snapshots); "
                         f"fix: raise systems.{t}.members or snapshots_per_member, or lower transfer.fraction")
        if cfg["predict"]["probe_epochs"] > 0 and n_small < 2:
            p.append(f"predict.probe_epochs = {cfg['predict']['probe_epochs']} needs a small TL set of at least 2 "
                     f"snapshots to hold one out, but it has {n_small}; fix: raise transfer.fraction or set "
                     "predict.probe_epochs: 0")
    return p


#: the least share of the forcing that the filter must keep at the forcing wavenumber, G(kf)
FILTER_MIN_FORCING = 0.5


def _filter_problems(flt: dict, systems: dict) -> list[str]:
    """The filter must keep the forcing scale of every flow: G(kf) >= FILTER_MIN_FORCING on the
    forcing's modes (kf, 0) and (0, kf).  A wider filter puts the LES scale above the forcing
    scale: the energy injection itself becomes subgrid, and a spectral filter with pi/Delta <= kf
    (or a filter wider than the domain) removes the forcing, or every mode, outright.  One
    message, for the flow that allows the narrowest filter."""
    import torch

    from .filters import filter_width, transfer_function

    kind, wf = flt["kind"], float(flt["width_factor"])

    def g(kf, m, factor):
        return float(transfer_function(kind, torch.tensor(float(kf), dtype=torch.float64),
                                       torch.tensor(0.0, dtype=torch.float64), filter_width(m, factor)))

    worst = None
    for name, s in systems.items():
        if g(s["kf"], s["n_les"], wf) >= FILTER_MIN_FORCING:
            continue
        lo, hi = 0.0, wf  # the largest width factor that keeps the forcing: G(kf) falls with Delta up to its first zero
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            lo, hi = (mid, hi) if g(s["kf"], s["n_les"], mid) >= FILTER_MIN_FORCING else (lo, mid)
        if worst is None or lo < worst[1]:
            worst = (name, lo)
    if worst is None:
        return []
    name, lo = worst
    s = systems[name]
    return [f"filter.width_factor = {wf:g} ({kind}) keeps only G(kf) = {g(s['kf'], s['n_les'], wf):.3g} of the forcing "
            f"of systems.{name} (kf = {s['kf']}, n_les = {s['n_les']}; the least allowed is {FILTER_MIN_FORCING}): the "
            f"filter scale would lie above the forcing scale; fix: lower filter.width_factor below {lo:.3g} "
            f"(reference 2), or raise systems.{name}.n_les"]


def _les_problems(cfg: dict, skip=()) -> list[str]:
    """The a-posteriori LES of every target, checked before any work: its time step divides
    the sample interval and the statistics' sampling (``les.stats_every``) hits every sample
    time, the spin-up is shorter than the run, the correlation window fits in a test member
    and in the run, the test members hold ``les.starts`` starts, and the time step passes the
    DNS's a-priori screen on the LES grid (not for the flows in ``skip``, whose grids are wrong)."""
    les = cfg.get("les") or {}
    if not les.get("enabled", False):
        return []
    p = []
    if les["spinup"] >= les["time"]:
        p.append(f"les.spinup = {les['spinup']} leaves no statistics of les.time = {les['time']}; "
                 "fix: make les.spinup smaller than les.time")
    if les["cc_time"] > les["time"] * (1 + 1e-9):
        p.append(f"les.cc_time = {les['cc_time']} is longer than les.time = {les['time']}: the correlation with the "
                 "filtered DNS is never sampled at the late lags; fix: make les.time >= les.cc_time")
    per_sample, few_starts = {}, {}
    for t in cfg["targets"]:
        s = cfg["systems"].get(t)
        if s is None:
            continue
        si = s["sample_interval"]
        if not _is_multiple(si, les["dt"]):
            p.append(f"les.dt = {les['dt']} does not divide systems.{t}.sample_interval = {si}; "
                     "fix: choose les.dt = sample_interval / k for a whole k")
        elif round(si / les["dt"]) % les["stats_every"]:
            per_sample[t] = round(si / les["dt"])
        window = round(les["cc_time"] / si)
        usable = s["test_members"] * (s["snapshots_per_member"] - window)
        if window >= s["snapshots_per_member"]:
            p.append(f"les.cc_time = {les['cc_time']} spans {window} snapshots, not fewer than "
                     f"systems.{t}.snapshots_per_member = {s['snapshots_per_member']}; fix: lower les.cc_time or "
                     f"raise systems.{t}.snapshots_per_member")
        elif les["starts"] > usable:
            few_starts[t] = (usable, f"{s['test_members']} x ({s['snapshots_per_member']} - {window})")
        if t in skip:
            continue
        try:
            check_timestep(FlowParams.from_config(dict(s, n_dns=s["n_les"], dt=les["dt"]), t), cfg["dns"]["cfl_max"],
                           where="les", divides=si, steps_multiple=les["stats_every"])
        except TurbtlError as e:
            p.append(str(e))
    if per_sample:  # the statistics are sampled every stats_every steps: they must hit every sample time
        need = math.gcd(*per_sample.values())
        eg = max(d for d in range(1, les["stats_every"] + 1) if need % d == 0)
        p.append(f"les.stats_every = {les['stats_every']} does not divide the LES steps per sample interval "
                 f"(sample_interval / les.dt: {', '.join(f'{t} {v}' for t, v in per_sample.items())}), so the "
                 f"correlation with the filtered DNS would skip sample times; fix: choose a divisor of {need} (e.g. {eg})")
    if few_starts:
        t, (usable, how) = min(few_starts.items(), key=lambda kv: kv[1][0])
        p.append(f"les.starts = {les['starts']} exceeds the {usable} start snapshots of systems.{t} (test_members x "
                 f"(snapshots_per_member - les.cc_time / sample_interval) = {how})"
                 + (f", and of {', '.join(k for k in few_starts if k != t)}" if len(few_starts) > 1 else "")
                 + f"; fix: lower les.starts to at most {usable}, or raise test_members or snapshots_per_member")
    return p


if __name__ == "__main__":
    raise SystemExit(main())
