"""Property-based tests of the config and of the command-line entry points (hypothesis).

Configs are made by perturbing the tiny and the default config: a value replaced (NaN, +-inf,
0, negatives, huge and tiny numbers, wrong types, strings YAML reads as numbers), a key
deleted, an unknown key added, a flow renamed (odd, periodic, reserved names).  Every one must
either pass `validate_config` or raise `ConfigError` whose every problem names a real config
field; no other exception.  A few of the configs that pass are dry-run by Snakemake, which must
plan the number of jobs the config asks for.

    python -m pytest tests/test_config_fuzz.py                              # the quick profile (CI)
    python -m pytest tests/test_config_fuzz.py --hypothesis-profile=deep    # many more examples

The profiles are registered in tests/conftest.py.
"""
from __future__ import annotations

import copy
import io
import math
import re
from contextlib import redirect_stderr, redirect_stdout

import pytest
import yaml

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from turbtl import ConfigError  # noqa: E402
from turbtl.config import load_configs, load_schema, name_run, tl_layers, validate_config  # noqa: E402
from turbtl.config_sizes import small_set_sizes  # noqa: E402

from helpers_workflow import REPO, TINY, snakemake, tiny_config, write_config  # noqa: E402

SCHEMA = load_schema()
#: the two configs perturbed: config.yaml alone, and config.yaml with the tiny overlay, resolved
BASES = {"default": load_configs()[0], "tiny": load_configs([TINY])[0]}
for _c in BASES.values():
    name_run(_c)
    validate_config(_c)

ODD = [math.nan, math.inf, -math.inf, 0, -1, -0.5, 1e-300, 1e300, 2**64, 10**30, -10**20, 0.5, 3, 7.5,
       "", "x", "nan", ".inf", "1e-3", "5.0", "true", True, False, None, [], {}, [1, 2], {"a": 1}]
NAMES = ["h" * 20, "ab" * 20, "x_spectra", "3000", "no", "a b", "-x", "é", "a" * 101, "base", "flow_1"]


def _leaves(cfg, path=()):
    """Every scalar or list leaf of a config, by path."""
    if isinstance(cfg, dict):
        for k, v in cfg.items():
            yield from _leaves(v, (*path, k))
    else:
        yield path


def _schema_paths(node=SCHEMA, path=()):
    """Every key path the schema knows (a flow's keys under any flow name, '*')."""
    out = {path}
    if isinstance(node, dict) and node.get("type") == "object":
        for k, sub in node.get("properties", {}).items():
            out |= _schema_paths(sub, (*path, k))
        if isinstance(node.get("additionalProperties"), dict):
            out |= _schema_paths(node["additionalProperties"], (*path, "*"))
    return out


KNOWN = {".".join(p) for p in _schema_paths() if p}


def _names_a_field(line: str, cfg: dict) -> bool:
    """Does a problem line name a real config field: a key path of the schema (a flow's under its
    name), a top-level key, or a flow name of the config?"""
    flows = set(cfg.get("systems") or {}) if isinstance(cfg.get("systems"), dict) else set()
    for token in re.findall(r"[A-Za-z_][\w\-]*(?:\.[\w\-]+)*", line):
        parts = token.split(".")
        if ".".join(parts) in KNOWN or parts[0] in SCHEMA["properties"] and len(parts) == 1:
            return True
        if parts[0] == "systems" and len(parts) >= 2 and (".".join(["systems", "*", *parts[2:]]) in KNOWN):
            return True
        if parts[0] in ("systems", "flow_defaults") and len(parts) >= 2:
            return True
        if token in flows:
            return True
    return False


def _set(cfg, path, value):
    node = cfg
    for k in path[:-1]:
        node = node[k]
    node[path[-1]] = value


def _delete(cfg, path):
    node = cfg
    for k in path[:-1]:
        node = node[k]
    del node[path[-1]]


@st.composite
def perturbed(draw):
    """A base config and one to three perturbations of it."""
    which = draw(st.sampled_from(sorted(BASES)))
    cfg = copy.deepcopy(BASES[which])
    for _ in range(draw(st.integers(1, 3))):
        paths = sorted(_leaves(cfg), key=str)
        op = draw(st.sampled_from(["value", "value", "value", "number", "delete", "extra", "rename"]))
        if op in ("value", "number") and paths:
            path = draw(st.sampled_from(paths))
            value = draw(st.sampled_from(ODD)) if op == "value" else draw(
                st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.integers(-10**25, 10**25)))
            _set(cfg, path, copy.deepcopy(value))
        elif op == "delete" and paths:
            _delete(cfg, draw(st.sampled_from(paths)))
        elif op == "extra":
            sections = [p for p in _leaves_dicts(cfg)]
            _set(cfg, (*draw(st.sampled_from(sections)), draw(st.sampled_from(["bogus", "Re", "seed", "like"]))),
                 draw(st.sampled_from(ODD)))
        elif op == "rename" and isinstance(cfg.get("systems"), dict) and cfg["systems"]:
            old = draw(st.sampled_from(sorted(cfg["systems"], key=str)))
            new = draw(st.sampled_from(NAMES))
            cfg["systems"] = {(new if k == old else k): v for k, v in cfg["systems"].items()}
            if draw(st.booleans()) and isinstance(cfg.get("targets"), list):
                cfg["targets"] = [new if t == old else t for t in cfg["targets"]]
    return which, cfg


def _leaves_dicts(cfg, path=()):
    if isinstance(cfg, dict):
        yield path
        for k, v in cfg.items():
            yield from _leaves_dicts(v, (*path, k))


def expected_jobs(cfg: dict) -> int:
    """The jobs a valid config asks for (the DAG of workflow/rules), `all` included."""
    targets, layers = len(cfg["targets"]), len(tl_layers(cfg))
    baselines = 1 + sum(bool(v) for v in cfg["transfer"]["baselines"].values())
    les = 2 * bool(cfg["les"]["enabled"])
    per_target = layers + baselines + 7 + les  # + system_spectra, predict, activations, sweep_summary,
    n = 2 * (1 + targets) + 2 + targets * per_target + 2  # tl_kernels, compare, figures_target
    if cfg["transfer"]["pairs"]:
        n += targets * (layers * (layers - 1) // 2 + 1)
    extra = len(small_set_sizes(cfg)) - 1 if small_set_sizes(cfg) else 0
    if extra > 0:
        small = sum(bool(cfg["transfer"]["baselines"][m]) for m in ("scratch", "finetune_all"))
        n += targets * (extra * (layers + small + 1) + 1)
    return n


DRY_RUNS = {"done": 0}
#: how many of the configs that pass are dry-run by Snakemake (3 s each): a few in the quick
#: profile, more in the deep one
MAX_DRY_RUNS = 3 if settings.default.max_examples <= 150 else 40


#: examples per run: the profile's (tests/conftest.py: quick 150, deep 3000)
EXAMPLES = settings.default.max_examples


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)
@given(perturbed())
def test_a_perturbed_config_passes_or_names_the_field(tmp_path_factory, case):
    which, cfg = case
    before = copy.deepcopy(cfg)
    try:
        validate_config(cfg)
    except ConfigError as e:
        lines = [q for q in str(e).split("\n  - ")[1:]]
        assert lines, str(e)
        for line in lines:
            assert "fix:" in line, line
            assert _names_a_field(line, before), line
        return
    # it passed: a few of them are dry-run, and plan what the config asks for
    if DRY_RUNS["done"] < MAX_DRY_RUNS and which == "tiny" and cfg != BASES["tiny"]:
        DRY_RUNS["done"] += 1
        work = tmp_path_factory.mktemp("dry")
        r = snakemake(work, write_config(cfg, work / "c.yaml"), "-n", "--quiet", "rules")
        assert r.returncode == 0, (r.stdout + r.stderr)[-3000:]
        counts = dict(re.findall(r"^(\w+)\s+(\d+)$", r.stdout + r.stderr, re.M))
        assert int(counts["total"]) == expected_jobs(cfg), counts


def test_expected_jobs_matches_the_default_and_tiny_dags():
    """The count the fuzz test holds dry runs to, checked on the two configs it perturbs."""
    assert expected_jobs(BASES["default"]) == 84
    assert expected_jobs(BASES["tiny"]) == 44


# --------------------------------------------------------------------------- the inputs named in issue 34
@pytest.mark.parametrize("path,value,needle", [
    (("training", "lr"), math.nan, "training.lr = nan is not a finite number"),
    (("systems", "high_re", "mu"), math.nan, "systems.high_re.mu = nan is not a finite number"),
    (("systems", "base", "Re"), math.inf, "systems.base.Re = inf is not a finite number"),
    (("systems", "base", "dt"), math.nan, "systems.base.dt = nan is not a finite number"),
    (("transfer", "fraction"), math.nan, "transfer.fraction = nan is not a finite number"),
    (("les", "dt"), math.nan, "les.dt = nan is not a finite number"),
    (("systems", "beta", "beta"), math.inf, "systems.beta.beta = inf is not a finite number"),
    (("flow_defaults", "mu"), -math.inf, "flow_defaults.mu = -inf is not a finite number"),
    (("systems", "base", "seed"), 2**64, "systems.base.seed = 18446744073709551616 is invalid"),
    (("replicate",), 10**17, "replicate = 100000000000000000 is invalid"),
    (("training", "seed"), 2**40, "training.seed = 1099511627776 is invalid"),
    (("systems", "base", "n_dns"), 10**9, "systems.base.n_dns = 1000000000 is invalid"),
    (("network", "kernel_size"), 33, "network.kernel_size = 33 is larger than the LES grid"),
])
def test_named_bad_inputs_stop_before_any_job(path, value, needle):
    cfg = copy.deepcopy(BASES["default"])
    _set(cfg, path, value)
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg)
    assert needle in str(exc.value) and "fix:" in str(exc.value), str(exc.value)


def test_yaml_nan_and_inf_in_a_file_are_named(tmp_path):
    from turbtl.config import main

    f = tmp_path / "c.yaml"
    f.write_text("systems:\n  base: {members: 8, seed: 1, Re: .nan}\ntraining: {lr: .inf}\n")
    err = io.StringIO()
    with redirect_stderr(err), redirect_stdout(io.StringIO()):
        assert main([str(f)]) == 1
    assert "systems.base.Re = nan is not a finite number" in err.getvalue()
    assert "training.lr = inf is not a finite number" in err.getvalue() and "Traceback" not in err.getvalue()


def test_a_periodic_flow_name_is_named_before_snakemake_refuses_it(tmp_path):
    cfg = tiny_config()
    cfg["systems"]["h" * 20] = cfg["systems"].pop("high_kf")
    cfg["targets"] = ["high_re", "h" * 20]
    with pytest.raises(ConfigError, match=r"systems\.h{20}: the name ends in 'h' repeated 20 times or more"):
        validate_config(_resolved(cfg))


def _resolved(over):
    from turbtl.config import DEFAULT_CONFIG, check_yaml_file, merge, overlay_flows

    return overlay_flows(merge(check_yaml_file(DEFAULT_CONFIG), copy.deepcopy(over)), [over])


def test_device_cuda_without_cuda_stops_before_any_job(tmp_path):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    cfg = tiny_config()
    cfg["device"] = "cuda"
    r = snakemake(tmp_path, write_config(cfg, tmp_path / "c.yaml"), "-n")
    assert r.returncode != 0 and "device = 'cuda', but torch" in r.stdout + r.stderr and "fix: device: auto" in \
        r.stdout + r.stderr, (r.stdout + r.stderr)[-2000:]
    assert not (tmp_path / "results").exists()


def test_silent_oddities_are_warned():
    """A network that sees the periodic domain many times over, batches larger than the data."""
    from turbtl.config_checks import config_warnings

    cfg = copy.deepcopy(BASES["tiny"])
    cfg["network"]["depth"] = 50
    cfg["transfer"]["batch_size"] = 100000
    warns = config_warnings(validate_config(cfg))
    assert any("network.depth = 50 with kernel_size = 5 sees 201 grid points" in w for w in warns), warns
    assert any("transfer.batch_size = 100000 is larger than the small target set (4 snapshots)" in w for w in warns)
    assert config_warnings(copy.deepcopy(BASES["default"])) == []


# --------------------------------------------------------------------------- command-line entry points
TOKENS = ["default", "tiny", "nosuch", "default-rep1", "--page", "--aposteriori-only", "--sizes-only", "--index",
          "--gain-threshold", "0.05", "nan", "-1", "--json", "--resolved", "--help-me", "-x", "", " ", "é",
          "presets/reference.yaml", "presets/nosuch.yaml", "config.yaml", "tests", "README.md", "--"]


def _call(main, argv):
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with redirect_stdout(out), redirect_stderr(err):
        try:
            r = main(argv)
            code = r if isinstance(r, int) else 0
        except SystemExit as e:
            code = e.code if isinstance(e.code, int) else 1
            if e.code not in (None, 0, 1, 2):
                err.write(str(e.code))
    return code, out.getvalue(), err.getvalue()


@settings(max_examples=max(20, EXAMPLES // 3), deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(["config", "report", "replicates"]),
       st.lists(st.one_of(st.sampled_from(TOKENS), st.text(max_size=6)), max_size=5))
def test_command_line_errors_are_one_line_never_a_traceback(tmp_path_factory, module, args):
    import importlib
    import os

    tmp = tmp_path_factory.mktemp("cli")
    main = importlib.import_module(f"turbtl.{module}").main
    extra = [] if module == "config" else ["--workdir", str(tmp), "--pages-dir", str(tmp / "pages")]
    cwd = os.getcwd()
    os.chdir(REPO)
    try:
        code, out, err = _call(main, [*args, *extra])
    finally:
        os.chdir(cwd)
    assert "Traceback" not in err + out
    assert code in (0, 1, 2), (code, err)
    if code == 2:  # a usage error: one line (split on newlines only: an argument may hold other separators)
        assert len(err.strip().split("\n")) == 1, err
    if code == 1 and module != "config":
        assert len(err.strip().split("\n")) == 1, err
    assert not (REPO / "docs" / "results" / "nosuch.md").exists()


def test_a_yaml_file_of_odd_shape_is_refused_with_its_name(tmp_path):
    from turbtl.config import main

    for text in ("", "- a\n- b\n", "just a string\n", "3\n"):
        f = tmp_path / "odd.yaml"
        f.write_text(text)
        code, out, err = _call(main, [str(f)])
        assert code == 1 and str(f) in err and "fix:" in err and "Traceback" not in err, err
    assert yaml.safe_load("a: 1") == {"a": 1}
