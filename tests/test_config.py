"""Config validation: every bad value fails with a message naming the field and the fix."""
import copy
import subprocess
import sys

import pytest
import yaml

from turbtl import ConfigError
from turbtl.config import REPLICATE_STRIDE, check_yaml_file, replicated, small_set_size, tl_layers, validate_config

from helpers_workflow import REPO, TINY, snakemake


@pytest.fixture
def cfg():
    return yaml.safe_load((REPO / "config.yaml").read_text())


def test_default_and_tiny_configs_are_valid(cfg):
    validate_config(cfg)
    validate_config(yaml.safe_load(TINY.read_text()))


def test_defaults_are_filled(cfg):
    del cfg["systems"]["base"]["mu"]
    del cfg["dns"]
    validate_config(cfg)
    assert cfg["systems"]["base"]["mu"] == 0.1
    assert cfg["dns"]["cfl_max"] == 0.25 and cfg["dns"]["precision"] == "float32"


def test_dns_prune_is_checked_before_any_work(cfg):
    """dns.prune: auto by default, its four modes and YAML's on/off accepted, a typo named."""
    del cfg["dns"]
    validate_config(cfg)
    assert cfg["dns"]["prune"] == "auto"
    for v in ("inverse", "both", "off", True, False):
        cfg["dns"]["prune"] = v
        validate_config(cfg)
    cfg["dns"]["prune"] = "forward"
    _fails(cfg, "dns.prune")


def test_replicate_shifts_seeds_and_is_checked(cfg):
    """replicate: 0 by default (the config's seeds as written); r shifts a seed by 1000 r, so
    that no replicate reuses another flow's or replicate's seed; a negative one is named."""
    validate_config(cfg)
    assert cfg["replicate"] == 0 and replicated(cfg, 3) == 3
    cfg["replicate"] = 2
    validate_config(cfg)
    assert REPLICATE_STRIDE == 1000 and replicated(cfg, 3) == 2003
    seeds = {replicated(dict(replicate=r), s["seed"]) for r in range(3) for s in cfg["systems"].values()}
    assert len(seeds) == 3 * len(cfg["systems"])
    cfg["replicate"] = -1
    _fails(cfg, "replicate")


def _fails(cfg, *needles):
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg)
    msg = str(exc.value)
    for n in needles:
        assert n in msg, f"{n!r} not in {msg!r}"
    assert "fix:" in msg
    return msg


def test_unknown_key(cfg):
    cfg["systems"]["base"]["Reynolds"] = 5
    _fails(cfg, "'Reynolds'", "systems.base", "allowed keys")


def test_unknown_top_level_key(cfg):
    cfg["trainig"] = {}
    _fails(cfg, "'trainig'")


@pytest.mark.parametrize("value", [0, -10])
def test_bad_reynolds(cfg, value):
    cfg["systems"]["high_re"]["Re"] = value
    _fails(cfg, "systems.high_re.Re", "positive")


def test_les_grid_must_divide_dns_grid(cfg):
    cfg["systems"]["base"]["n_les"] = 48
    _fails(cfg, "systems.base.n_les = 48 does not divide n_dns = 128")


def test_les_grid_larger_than_dns(cfg):
    cfg["systems"]["base"]["n_les"] = 256
    cfg["systems"]["base"]["kf"] = 4
    _fails(cfg, "systems.base.n_les = 256 is larger than n_dns = 128")


def test_forcing_not_resolved_on_les_grid(cfg):
    cfg["systems"]["high_kf"]["kf"] = 11
    _fails(cfg, "systems.high_kf.kf = 11 is not resolved", "n_les")


def test_target_not_defined(cfg):
    cfg["targets"].append("nowhere")
    _fails(cfg, "'nowhere' is not a defined system")


def test_base_not_defined(cfg):
    cfg["base"] = "nowhere"
    _fails(cfg, "base = 'nowhere' is not a defined system")


def test_duplicate_target(cfg):
    cfg["targets"].append("beta")
    _fails(cfg, "listed more than once")


def test_duplicate_system_names_in_yaml(tmp_path):
    text = (REPO / "config.yaml").read_text()
    block = text[text.index("  beta:               # beta-plane"):text.index("\ndns:")]
    p = tmp_path / "dup.yaml"
    p.write_text(text.replace("\ndns:", "\n" + block + "\ndns:", 1))
    cfg = yaml.safe_load(p.read_text())  # plain YAML silently keeps the last one
    with pytest.raises(ConfigError, match="duplicate key 'beta'.*fix"):
        validate_config(cfg, config_files=[p])


def test_unstable_time_step(cfg):
    cfg["systems"]["base"]["dt"] = 0.05
    _fails(cfg, "time step too large for system 'base'", "reduce systems.base.dt to at most")


def test_too_few_members_for_splits(cfg):
    cfg["systems"]["beta"]["members"] = 3
    cfg["systems"]["beta"]["val_members"] = 2
    _fails(cfg, "leaves no training member")


def test_small_set_larger_than_target_training_data(cfg):
    cfg["transfer"]["fraction"] = 1.0
    _fails(cfg, "fewer than the small TL set")


def test_layers_out_of_range(cfg):
    cfg["transfer"]["layers"] = [1, 12]
    _fails(cfg, "transfer.layers = [12]")


def test_layers_and_small_set(cfg):
    validate_config(cfg)
    assert tl_layers(cfg) == list(range(1, 12))
    # 6 training members x 30 snapshots x 10 %
    assert small_set_size(cfg) == 18
    c2 = copy.deepcopy(cfg)
    c2["transfer"]["layers"] = [3, 1]
    validate_config(c2)
    assert tl_layers(c2) == [1, 3]


def test_nested_overrides_given_as_strings_become_numbers(cfg):
    """`snakemake --config "training={epochs: 5}"` hands '5' over as a string."""
    cfg["training"]["epochs"] = "5"
    cfg["systems"]["base"]["Re"] = "1100"
    cfg["transfer"]["alpha"] = "0.1"
    cfg["training"]["augment"] = "true"
    validate_config(cfg)
    assert cfg["training"]["epochs"] == 5 and isinstance(cfg["training"]["epochs"], int)
    assert cfg["systems"]["base"]["Re"] == 1100.0 and cfg["transfer"]["alpha"] == 0.1
    assert cfg["training"]["augment"] is True
    for field, value in (("epochs", "five"), ("epochs", "2.5"), ("epochs", "true")):
        bad = copy.deepcopy(cfg)
        bad["training"][field] = value
        with pytest.raises(ConfigError, match="training.epochs"):
            validate_config(bad)
    bad = copy.deepcopy(cfg)
    bad["device"] = 1  # a string field is never touched
    with pytest.raises(ConfigError, match="device"):
        validate_config(bad)


def test_probe_needs_two_snapshots(cfg):
    cfg["transfer"]["fraction"] = 1.0 / 180  # one snapshot
    with pytest.raises(ConfigError, match="predict.probe_epochs"):
        validate_config(cfg)
    cfg["predict"] = {"probe_epochs": 0}
    validate_config(cfg)


# --------------------------------------------------------------------------- YAML syntax errors
def _broken(tmp_path, old, new, name="bad.yaml"):
    """A copy of config.yaml with ``old`` replaced by ``new``; returns the path and the 1-based line of ``new``."""
    text = (REPO / "config.yaml").read_text()
    assert text.count(old) == 1, old
    text = text.replace(old, new)
    p = tmp_path / name
    p.write_text(text)
    return p, text[:text.index(new)].count("\n") + 1


# (replaced, replacement, line and column of the reported problem (0: the replaced line), phrase of the fix)
YAML_BREAKS = {
    "unclosed bracket": ("targets: [high_re, high_kf, beta]\n", "targets: [high_re, high_kf\n", None,
                         "close the '[' of line {line}"),
    "key indented too deep": ("    kf: 8\n", "      kf: 8\n", (0, 9), "indent this key"),
    "key indented too little": ("    kf: 8\n", "   kf: 8\n", (0, 4), "indent this key"),
    "tab": ("    kf: 8\n", "\tkf: 8\n", (0, 1), "indent with spaces"),
    "unclosed quote": ("device: auto", 'device: "auto', None, "close the quote (\") opened at line {line}, column 9"),
}


@pytest.mark.parametrize("case", YAML_BREAKS)
def test_yaml_syntax_error_names_file_line_and_fix(tmp_path, case):
    old, new, where, fix = YAML_BREAKS[case]
    p, line = _broken(tmp_path, old, new)
    with pytest.raises(ConfigError) as exc:
        check_yaml_file(p)
    msg = str(exc.value)
    assert f"YAML syntax error in config file {p}, line " in msg, msg
    if where is not None:
        assert f"line {line + where[0]}, column {where[1]}:" in msg, msg
    assert "; fix: " + fix.format(line=line) in msg, msg
    with pytest.raises(ConfigError, match="YAML syntax error"):  # also via the check Snakemake runs
        validate_config({}, config_files=[p])


def test_unclosed_bracket_reports_where_it_opened(tmp_path):
    p, line = _broken(tmp_path, "targets: [high_re, high_kf, beta]", "targets: [high_re, high_kf")
    assert line == 15  # config.yaml's own targets line: the test breaks what it means to break
    with pytest.raises(ConfigError, match=r"while parsing a flow sequence that starts at line 15, column 10\)"):
        check_yaml_file(p)


def test_config_must_be_a_mapping_and_json_is_fine(tmp_path):
    for text, what in (("- base\n- high_re\n", "a list"), ("# nothing\n", "nothing")):
        (tmp_path / "c.yaml").write_text(text)
        with pytest.raises(ConfigError, match=f"c.yaml holds {what}, not a mapping of keys; fix:"):
            check_yaml_file(tmp_path / "c.yaml")
    (tmp_path / "c.json").write_text('{"base":\t"base"}')  # a tab: fine in JSON, which Snakemake reads first
    assert check_yaml_file(tmp_path / "c.json") == {"base": "base"}
    with pytest.raises(ConfigError, match="not found"):
        check_yaml_file(tmp_path / "missing.yaml")


def test_duplicate_key_names_the_file(tmp_path):
    p, line = _broken(tmp_path, "  high_kf:            # forcing", "  beta:            # forcing")
    with pytest.raises(ConfigError, match=rf"duplicate key 'beta' \(line \d+ and line {line}\) in {p}; fix:"):
        check_yaml_file(p)


def _snakemake_default_config(workdir):
    """``snakemake -n`` in ``workdir`` on its config.yaml (no --configfile)."""
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir), "-n"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


@pytest.mark.slow
def test_snakemake_reports_yaml_error_of_default_config_with_line(tmp_path):
    _, line = _broken(tmp_path, "    kf: 8\n", "      kf: 8\n", name="config.yaml")
    r = _snakemake_default_config(tmp_path)
    out = r.stdout + r.stderr  # Snakemake prints its errors to stdout
    assert r.returncode != 0
    assert f"YAML syntax error in config file config.yaml, line {line}, column 9:" in out, out
    assert "fix: indent this key" in out and "Job stats" not in out


@pytest.mark.slow
def test_yaml_error_of_a_configfile_named_by_the_checker(tmp_path):
    """Snakemake reads --configfile before the Snakefile runs (generic message); the checker names file and line."""
    p, line = _broken(tmp_path, "targets: [high_re, high_kf, beta]", "targets: [high_re, high_kf")
    assert snakemake(tmp_path, p, "-n").returncode != 0
    r = subprocess.run([sys.executable, "-m", "turbtl.config", str(p)], capture_output=True, text=True, cwd=REPO,
                       timeout=120)
    assert r.returncode == 1
    assert f"ConfigError: YAML syntax error in config file {p}, line " in r.stderr, r.stderr
    assert f"starts at line {line}, column 10); fix: close the '[' of line {line}" in r.stderr, r.stderr
    ok = subprocess.run([sys.executable, "-m", "turbtl.config", "presets/reference.yaml"], capture_output=True,
                        text=True, cwd=REPO, timeout=120)
    assert ok.returncode == 0 and "config OK" in ok.stdout, ok.stderr
