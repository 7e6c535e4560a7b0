"""Config validation: a JSON schema (workflow/schemas/config.schema.yaml) plus the checks a
schema cannot express (:mod:`turbtl.config_checks`).  Runs when the Snakefile is parsed, so a
bad config fails before any job starts.  Every message names the field and the fix.  Reading
the files (YAML errors with file and line, duplicate keys): :mod:`turbtl.config_files`.
"""
from __future__ import annotations

import copy
import math
from pathlib import Path

import yaml

from . import ConfigError
from .cli import ArgumentParser, one_line_errors
from .config_checks import config_warnings, cross_checks, device_problems, name_types
from .config_files import check_yaml_file, merge
from .config_flows import resolve_flows
from .config_sizes import base_train_snapshots, small_set_size, small_set_sizes, train_snapshots

__all__ = ["validate_config", "load_schema", "fill_defaults", "tl_layers", "base_train_snapshots",
           "small_set_size", "small_set_sizes", "train_snapshots", "check_yaml_file", "coerce_scalars", "replicated",
           "load_configs", "overlay_flows", "name_run", "own_flows", "write_run_config", "REPLICATE_STRIDE",
           "REPLICATED_SEEDS", "DEFAULT_CONFIG"]

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
#: the embedded default config: every run starts from it, a --configfile extends it (an overlay)
DEFAULT_CONFIG = REPO / "config.yaml"


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
    if typ == "integer" and isinstance(parsed, float):  # a whole float, but not one beyond exact integers
        return int(parsed) if parsed.is_integer() and abs(parsed) <= 2**53 else _NO
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


# --------------------------------------------------------------------------- NaN and infinity
def non_finite(cfg, schema: dict | None = None, path=()) -> list[str]:
    """Every NaN or infinity in the config (YAML's ``.nan``, ``.inf``; a JSON schema's range
    checks pass NaN, whose every comparison is false), named by its path with the key's
    description.  No key of the config takes one, so each is an error before anything
    computes with it."""
    if isinstance(cfg, dict):
        return [m for k, v in cfg.items() for m in non_finite(v, schema, (*path, k))]
    if isinstance(cfg, list):
        return [m for i, v in enumerate(cfg) for m in non_finite(v, schema, (*path, i))]
    if isinstance(cfg, float) and not math.isfinite(cfg):
        where = _where(path)
        node = _subschema(schema or {}, path if not isinstance(path[-1], int) else path[:-1])  # a list item: the list's
        if schema is not None and not node:
            return []  # an unknown key: the schema names it
        desc = node.get("description", "see workflow/schemas/config.schema.yaml")
        return [f"{where} = {cfg} is not a finite number; fix: give a finite value ({where}: {desc})"]
    return []


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
        if len(path) == 2 and path[0] == "systems":  # checked on the merged flow
            return (f"missing key {where}.{missing}; fix: add it to the flow, to the flow it is `like`, or to "
                    f"flow_defaults ({desc})")
        return f"missing key {where}.{missing}; fix: add it ({desc})" if path else \
            f"missing top-level key '{missing}'; fix: add it ({desc})"
    if "propertyNames" in err.schema_path:  # jsonschema reports the failing check (pattern)
        return (f"bad flow name {err.instance!r} in {where}; fix: "
                + _subschema(schema, path).get("propertyNames", {}).get("description", "rename it"))
    if len(path) == 2 and path[0] == "systems" and not isinstance(err.instance, dict):
        return _flow_entry_message(path[1], err.instance, schema)
    node = _subschema(schema, path)
    desc = node.get("description", "see workflow/schemas/config.schema.yaml")
    return f"{where} = {err.instance!r} is invalid ({err.message}); fix: give a valid value ({where}: {desc})"


def _flow_entry_message(name, value, schema) -> str:
    """A ``systems:`` entry that is not a mapping of parameters (an empty flow, a value)."""
    if value is None:
        return (f"systems.{name} is empty; fix: give its parameters (Re, kf, ...) indented under "
                f"'{name}:', or remove it")
    return (f"systems.{name} = {value!r} is not a flow; fix: give the flow's parameters (Re, kf, ...) "
            f"indented under '{name}:'")


def outdented_flow_parameters(cfg: dict, schema: dict) -> list[str]:
    """Flow parameters written at the level of the flow names (``systems: {Re: 1000, ...}``,
    the usual indentation slip), said in one message before the schema's one per key."""
    systems = cfg.get("systems")
    if not isinstance(systems, dict):
        return []
    params = _subschema(schema, ["systems", "_"]).get("properties", {})
    # (an empty entry, None, is an empty flow, though named like a parameter: `beta:` is both)
    slipped = [k for k, v in systems.items() if k in params and v is not None and not isinstance(v, dict)]
    if not slipped:
        return []
    one = len(slipped) == 1
    return [f"systems: {', '.join(map(str, slipped))} {'is a flow parameter' if one else 'are flow parameters'}"
            f" at the level of the flow names; fix: indent {'it' if one else 'them'} under {'its' if one else 'their'} "
            "flow's name (two spaces deeper than '<flow>:')"]


# --------------------------------------------------------------------------- helpers
def tl_layers(cfg) -> list[int]:
    """The 1-based layers the sweep re-trains."""
    layers = cfg["transfer"]["layers"]
    depth = cfg["network"]["depth"]
    return list(range(1, depth + 1)) if layers == "all" else sorted(int(i) for i in layers)


def load_configs(files=()) -> tuple[dict, list[Path]]:
    """config.yaml extended by the overlay ``files`` in order, as ``snakemake --configfile FILE ...``
    extends it (a mapping merges key by key, any other value replaces), flows as
    :func:`overlay_flows` says.  Returns the merged config and the overlay files (config.yaml
    itself left out)."""
    overlays = [Path(f) for f in files if not _is_default_config(f)]
    cfg = check_yaml_file(DEFAULT_CONFIG)
    for f in overlays:
        merge(cfg, check_yaml_file(f))
    return overlay_flows(cfg, overlays), overlays


def overlay_flows(cfg: dict, overlays=(), cli=None) -> dict:
    """A flow that an overlay file defines REPLACES the flow of that name from config.yaml (or
    from an earlier overlay): it starts from ``flow_defaults`` (or from its ``like:`` flow), not
    from config.yaml's flow of the same name, whose own keys (a finer ``n_dns``, say) it would
    otherwise inherit unseen.  Snakemake merges the files key by key; this undoes that for
    ``systems:`` entries only.  A ``--config 'systems={base: {Re: 2000}}'`` (``cli``) still
    changes single keys of a flow.  ``overlays``: the overlay files, or their parsed contents."""
    systems = cfg.get("systems")
    if not isinstance(systems, dict):
        return cfg
    for f in overlays:
        own = (f if isinstance(f, dict) else check_yaml_file(f)).get("systems")
        if isinstance(own, dict):
            systems.update(copy.deepcopy(own))
    given = (cli or {}).get("systems")
    if isinstance(given, dict):
        merge(systems, copy.deepcopy(dict(given)))
    return cfg


def _is_default_config(f) -> bool:
    try:
        return Path(f).resolve() == DEFAULT_CONFIG.resolve()
    except OSError:
        return False


def own_flows(overlays=()) -> set:
    """The flows of the user's own file: those the overlay files define (config.yaml's when there
    is none), without the flows that another flow there is ``like``.  Only these are said to be
    idle (:func:`turbtl.config_checks.config_warnings`): config.yaml's flows under a preset are a
    library, not a slip."""
    own, parents = set(), set()
    for f in list(overlays) or [DEFAULT_CONFIG]:
        systems = check_yaml_file(f).get("systems")
        if isinstance(systems, dict):
            own |= set(systems)
            parents |= {v.get("like") for v in systems.values() if isinstance(v, dict)}
    return own - parents


def name_run(cfg: dict, overlays=(), cli=None) -> dict:
    """Give the run its name (``cfg["run"]``, the folder ``results/<run>/``): the one that
    ``--config run=NAME`` (``cli``) or an overlay file sets, else the last overlay file's name
    without its extension (``--configfile my-flows.yaml``: ``my-flows``), so that no two
    configs write into one folder by accident; config.yaml alone is the run ``default``."""
    if "run" in (cli or {}) or not overlays:
        return cfg
    if any("run" in check_yaml_file(f) for f in overlays):
        return cfg
    cfg["run"] = Path(overlays[-1]).stem
    return cfg


def write_run_config(cfg: dict, path) -> None:
    """The resolved config of a run, as YAML, beside its outputs (written when its jobs start):
    what the run is, for a reader and for :mod:`turbtl.replicates`."""
    from .io import atomic_path

    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(dict(cfg), sort_keys=False))


@one_line_errors("python -m turbtl.config")
def main(argv=None) -> int:
    """``python -m turbtl.config [--resolved] [FILE ...]``: check config.yaml, extended by the
    overlay files as ``snakemake --configfile FILE ...`` extends it (YAML syntax with file and
    line, then the schema and cross-field checks of the merged config), without running
    Snakemake; ``--resolved`` prints the merged config, every flow's parameters resolved."""
    import sys

    ap = ArgumentParser(prog="python -m turbtl.config", description=main.__doc__.split(":", 1)[1].strip())
    ap.add_argument("files", nargs="*", metavar="FILE", help="overlay config files (default: config.yaml alone)")
    ap.add_argument("--resolved", action="store_true", help="print the merged config with every flow resolved")
    a = ap.parse_args(argv)
    try:
        cfg, overlays = load_configs(a.files)
        name_run(cfg, overlays)
        validate_config(cfg)
        if problems := device_problems(cfg):
            raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    except ConfigError as e:
        print(f"ConfigError: {e}", file=sys.stderr)
        return 1
    for w in config_warnings(cfg, own=own_flows(overlays)):
        print(f"warning: {w}", file=sys.stderr)
    if a.resolved:
        print(yaml.safe_dump(cfg, sort_keys=False), end="")
    from .paths import run_dir

    print(f"config OK: {' + '.join(['config.yaml', *map(str, overlays)])} (outputs in {run_dir(cfg)}/)",
          file=sys.stderr if a.resolved else sys.stdout)
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
    measures what the TL seeds' intervals hold fixed (docs/studies/replicates.md).  A replicate
    writes into its own folder (:func:`turbtl.paths.run_dir`)."""
    return int(seed) + REPLICATE_STRIDE * int(cfg.get("replicate", 0))


# --------------------------------------------------------------------------- main entry
def validate_config(cfg: dict, schema_path=None, *, config_files=()) -> dict:
    """Validate ``cfg`` in place: flows resolved (:mod:`turbtl.config_flows`), defaults filled.
    Raises ConfigError listing every problem."""
    import jsonschema

    for f in config_files:
        check_yaml_file(f)
    schema = load_schema(schema_path)
    coerce_scalars(cfg, schema)
    problems = non_finite(cfg, schema) + name_types(cfg) + outdented_flow_parameters(cfg, schema)
    if not problems:
        problems = resolve_flows(cfg, schema)
    fill_defaults(cfg, schema)
    if not problems:
        validator = jsonschema.Draft202012Validator(schema)
        errors = sorted(validator.iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
        said = set()  # a bad scalar fails its type and its enum alike: say it once
        for e in errors:
            key = tuple(map(str, e.absolute_path))
            if not isinstance(e.instance, dict | list) and key in said:
                continue
            said.add(key)
            problems.append(_message(e, schema))
    if not problems:
        problems = cross_checks(cfg)
    if problems:
        raise ConfigError("invalid configuration:\n  - " + "\n  - ".join(problems))
    return cfg


if __name__ == "__main__":
    raise SystemExit(main())
