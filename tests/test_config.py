"""Config validation: every bad value fails with a message naming the field and the fix."""
import copy
import math
import subprocess
import sys

import pytest
import yaml

from turbtl import ConfigError
from turbtl.config import REPLICATE_STRIDE, check_yaml_file, replicated, small_set_size, tl_layers, validate_config

from helpers_workflow import REPO, resolved, snakemake


@pytest.fixture
def cfg():
    """config.yaml with every flow resolved (its parameters written out), as the rules see it."""
    from turbtl.config import load_configs

    return validate_config(load_configs()[0])


def test_default_and_tiny_configs_are_valid(cfg):
    validate_config(cfg)
    resolved()


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


def test_dns_nonlinear_is_checked_before_any_work(cfg):
    """dns.nonlinear: basdevant by default, advective accepted, anything else named."""
    del cfg["dns"]
    validate_config(cfg)
    assert cfg["dns"]["nonlinear"] == "basdevant"
    cfg["dns"]["nonlinear"] = "advective"
    validate_config(cfg)
    cfg["dns"]["nonlinear"] = "rotational"
    _fails(cfg, "dns.nonlinear")


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
    block = text[text.index("  beta: {beta: 20.0"):text.index("\n\ndns:")]
    p = tmp_path / "dup.yaml"
    p.write_text(text.replace("\n\ndns:", "\n" + block + "\n\ndns:", 1))
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



def test_yaml_numbers_without_a_dot_lists_from_the_command_line_and_whole_floats(cfg):
    """YAML 1.1 reads `dt: 8e-4` (no dot) as a string: a number field takes it; `--config
    "transfer={layers: [1, 2]}"` hands the list items over as strings; `seeds: 5.0` would
    pass JSON Schema as an integer and then break `range`: each becomes the wanted type."""
    assert yaml.safe_load("dt: 8e-4")["dt"] == "8e-4"  # the trap itself
    cfg["systems"]["high_re"]["dt"] = "8e-4"
    cfg["training"]["lr"] = "1e-3"
    cfg["transfer"]["layers"] = ["1", "2"]
    cfg["transfer"]["seeds"] = 5.0
    cfg["network"]["depth"] = "11.0"
    validate_config(cfg)
    assert cfg["systems"]["high_re"]["dt"] == 8e-4 and cfg["training"]["lr"] == 1e-3
    assert cfg["transfer"]["layers"] == [1, 2] and tl_layers(cfg) == [1, 2]
    assert type(cfg["transfer"]["seeds"]) is int and cfg["transfer"]["seeds"] == 5
    assert type(cfg["network"]["depth"]) is int and cfg["network"]["depth"] == 11
    for section, key, value in (("transfer", "seeds", 5.5), ("systems", "dt", "nan"), ("transfer", "layers", ["one"])):
        bad = copy.deepcopy(cfg)
        (bad["systems"]["high_re"] if section == "systems" else bad[section])[key] = value
        with pytest.raises(ConfigError, match=key):
            validate_config(bad)


def test_les_grid_equal_to_dns_grid_fails_before_the_dns(cfg):
    """n_les = n_dns divides n_dns but leaves the LES modes outside the DNS's 2/3 band (the
    filter job would fail after the whole DNS): named, with an n_dns that works, also for the
    base flow (no LES of its own) and without the LES time-step noise for that flow."""
    cfg["systems"]["base"]["n_les"] = cfg["systems"]["base"]["n_dns"]
    cfg["systems"]["high_re"]["n_les"] = 192
    msg = _fails(cfg, "systems.base.n_les = 128 is too fine for n_dns = 128", "e.g. 256",
                 "systems.high_re.n_les = 192 is too fine for n_dns = 192", "e.g. 384")
    assert "high_re' on its 192^2 grid" not in msg and msg.count("\n  - ") == 2, msg


def test_odd_les_grid_gets_one_consistent_fix(cfg):
    """(On the base: a target's n_les other than the base's gets the base's as its fix.)"""
    cfg["systems"]["base"]["n_les"] = 33
    msg = _fails(cfg, "systems.base.n_les = 33 is odd", "e.g. 32, a divisor of n_dns = 128")
    assert "does not divide" not in msg and "differs from the base's" not in msg, msg


def test_les_starts_window_and_sampling_checked_before_any_work(cfg):
    """The a-posteriori LES's settings that used to fail (or silently give NaN correlations)
    only in the last stage: too many starts for the test members, a correlation window longer
    than the run, statistics sampled off the sample times."""
    s = cfg["systems"]["high_re"]
    window = round(cfg["les"]["cc_time"] / s["sample_interval"])
    usable = s["test_members"] * (s["snapshots_per_member"] - window)
    bad = copy.deepcopy(cfg)
    bad["les"]["starts"] = usable + 1
    _fails(bad, f"les.starts = {usable + 1} exceeds the {usable} start snapshots", f"at most {usable}")
    ok = copy.deepcopy(cfg)
    ok["les"]["starts"] = usable
    validate_config(ok)
    bad = copy.deepcopy(cfg)
    bad["les"]["time"] = cfg["les"]["cc_time"] / 2
    bad["les"]["spinup"] = 0.0
    _fails(bad, "les.cc_time", "make les.time >= les.cc_time")
    per = round(s["sample_interval"] / cfg["les"]["dt"])
    bad = copy.deepcopy(cfg)
    bad["les"]["stats_every"] = per - 1 if per > 2 else per + 1
    msg = _fails(bad, f"les.stats_every = {bad['les']['stats_every']} does not divide", f"a divisor of {per}")
    eg = int(msg.split("(e.g. ")[-1].split(")")[0])
    assert per % eg == 0 and eg <= bad["les"]["stats_every"]
    bad["les"]["enabled"] = False  # no LES, no LES checks
    validate_config(bad)


def test_filter_must_keep_the_forcing_scale(cfg):
    """A filter wider than the forcing scale (G(kf) < 1/2 on the forcing's modes) fails before
    any work, with the largest width that keeps it: for the Gaussian exp(-kf^2 Delta^2 / 24) = 1/2
    at Delta = sqrt(24 ln 2) / kf, i.e. width_factor = Delta n_les / (2 pi); for the sharp
    cut-off pi / Delta > kf, i.e. width_factor < n_les / (2 kf)."""
    import math

    s = cfg["systems"]["high_kf"]
    kf, m = s["kf"], s["n_les"]
    assert all(t["kf"] <= kf and t["n_les"] >= m for t in cfg["systems"].values())  # high_kf is the narrowest
    gauss_max = math.sqrt(24 * math.log(2)) / kf * m / (2 * math.pi)
    cfg["filter"]["width_factor"] = gauss_max * 1.01
    msg = _fails(cfg, "filter.width_factor", "systems.high_kf", f"below {gauss_max:.3g}")
    assert msg.count("\n  - ") == 1, msg  # one message, for the narrowest flow
    cfg["filter"]["width_factor"] = gauss_max * 0.99
    validate_config(cfg)
    cfg["filter"].update(kind="spectral", width_factor=m / (2 * kf))  # pi / Delta = kf: the forcing is cut
    _fails(cfg, "(spectral) keeps only G(kf) = 0", f"below {m / (2 * kf):.3g}")
    cfg["filter"]["width_factor"] = 0.99 * m / (2 * kf)
    validate_config(cfg)


def test_flow_names_yaml_reads_as_numbers_or_booleans_or_that_break_paths(cfg):
    for name in (3000, False):
        bad = copy.deepcopy(cfg)
        bad["systems"][name] = bad["systems"].pop("beta")
        bad["targets"] = [name if t == "beta" else t for t in bad["targets"]]
        _fails(bad, f"flow name {name!r} is read by YAML as", "start with a letter")
    bad = copy.deepcopy(cfg)
    bad["systems"]["3000"] = bad["systems"].pop("beta")  # a quoted target: used to crash sorted()
    bad["systems"][3000] = copy.deepcopy(bad["systems"]["3000"])
    _fails(bad, "flow name 3000 is read by YAML as a number")
    bad = copy.deepcopy(cfg)
    bad["systems"]["beta plane"] = bad["systems"].pop("beta")
    bad["targets"] = ["beta plane" if t == "beta" else t for t in bad["targets"]]
    _fails(bad, "bad flow name 'beta plane'", "letters, digits")


def test_flow_names_that_collide_with_output_files_or_are_too_long(cfg):
    """results/filtered/{flow}_spectra.nc is the filter's spectra file: a flow named
    'beta_spectra' made Snakemake fail with an ambiguous-rule error and no fix."""
    from turbtl.config_checks import MAX_NAME_LENGTH

    for name, needle in (("beta_spectra", "ending in '_spectra' are reserved"),
                         ("b" * (MAX_NAME_LENGTH + 1), f"at most {MAX_NAME_LENGTH}")):
        bad = copy.deepcopy(cfg)
        bad["systems"][name] = dict(bad["systems"]["beta"], seed=9)
        bad["targets"].append(name)
        _fails(bad, needle)
    ok = copy.deepcopy(cfg)
    longest = "f" + "".join(chr(97 + i % 26) for i in range(MAX_NAME_LENGTH - 1))  # (not 'b' * 100: periodic)
    ok["systems"][longest] = dict(ok["systems"]["beta"], seed=9)
    validate_config(ok)


def test_target_on_another_les_grid_than_the_base_fails_before_the_dns(cfg):
    """The predictors compare base and target activation spectra shell by shell: a target with
    another n_les passed the checks, and its predict and activations jobs failed with numpy
    broadcasting errors after its DNS, training and whole sweep had run (tiny config, 2026-11-29)."""
    cfg["systems"]["beta"].update(n_les=64)
    msg = _fails(cfg, "systems.beta.n_les = 64 differs from the base's n_les = 32", "fix: set systems.beta.n_les: 32")
    assert "high_re" not in msg and "high_kf" not in msg and msg.count("\n  - ") == 1, msg
    # the README's example: n_les 48 on n_dns 128 is told the base's n_les, not an n_dns for 48
    # (which would then fail again); an n_dns that the base's n_les does not divide gets one
    cfg["systems"]["beta"].update(n_les=48)
    msg = _fails(cfg, "systems.beta.n_les = 48 differs from the base's n_les = 32", "fix: set systems.beta.n_les: 32")
    assert "does not divide" not in msg and msg.count("\n  - ") == 1, msg
    cfg["systems"]["beta"].update(n_dns=120)
    _fails(cfg, "fix: set systems.beta.n_les: 32, and n_dns a multiple of it such as 128")


def test_outdented_or_empty_flow_says_how_to_indent(cfg):
    bad = copy.deepcopy(cfg)
    bad["systems"].update(strong_beta=None, Re=1000, kf=4, n_dns=128)  # the parameters slipped one level up
    msg = _fails(bad, "systems: Re, kf, n_dns are flow parameters at the level of the flow names",
                 "fix: indent them under their flow's name")
    assert msg.count("\n  - ") == 1, msg  # one message, not one per key
    bad = copy.deepcopy(cfg)
    bad["systems"]["strong_beta"] = None
    _fails(bad, "systems.strong_beta is empty; fix: give its parameters")
    bad = copy.deepcopy(cfg)
    bad["systems"]["beta"] = None  # a flow named like a parameter, left empty: an empty flow
    msg = _fails(bad, "systems.beta is empty; fix: give its parameters")
    assert "flow parameter" not in msg, msg
    bad["systems"].update(beta=dict(cfg["systems"]["beta"]), Re=1000)
    _fails(bad, "systems: Re is a flow parameter at the level of the flow names; fix: indent it under its flow's name")


def test_copied_flow_left_unedited_is_an_error_shared_seeds_a_warning(cfg):
    """A target whose DNS would repeat another flow's (same parameters and seed; its LES grid
    and splits do not matter) fails; flows that only share a seed, and flows of the user's own
    file defined but not run, are warnings."""
    from turbtl.config_checks import config_warnings

    bad = copy.deepcopy(cfg)
    bad["systems"]["strong_beta"] = dict(bad["systems"]["beta"], n_les=16, test_members=2)
    bad["targets"].append("strong_beta")
    _fails(bad, "systems.strong_beta has the same DNS parameters and seed as systems.beta")
    bad["systems"]["strong_beta"]["forcing"] = "kolmogorov"  # the default, written out: the same DNS
    _fails(bad, "systems.strong_beta has the same DNS parameters and seed as systems.beta")
    bad["systems"]["strong_beta"] = {"like": "beta", "n_les": 16}  # a like: copy left unedited
    _fails(bad, "systems.strong_beta has the same DNS parameters and seed as systems.beta")
    ok = copy.deepcopy(cfg)
    assert config_warnings(validate_config(ok)) == []
    ok["systems"]["strong_beta"] = dict(ok["systems"]["beta"], beta=40.0)
    ok["systems"]["parked"] = dict(ok["systems"]["beta"], seed=7)  # defined, not a target
    ok["targets"].append("strong_beta")
    warns = config_warnings(validate_config(ok))
    assert len(warns) == 2, warns
    assert "parked is defined but neither the base nor a target" in warns[0]
    assert "beta, strong_beta share seed 4" in warns[1]
    # flows not of the user's own file (config.yaml's under a preset) are not said to be idle
    assert len(config_warnings(ok, own={"strong_beta"})) == 1
    ok = copy.deepcopy(cfg)
    ok["dns"]["cfl_max"], ok["transfer"]["seeds"] = 0.31, 1
    warns = config_warnings(validate_config(ok))
    assert len(warns) == 2 and "dns.cfl_max = 0.31 is above 0.3" in warns[0] and "no paired test" in warns[1], warns
    ok["dns"]["cfl_max"], ok["transfer"]["seeds"] = 0.3, 2
    assert config_warnings(validate_config(ok)) == []


def test_a_bad_scalar_is_said_once(cfg):
    """``amp: null`` fails the schema's type and enum; the user gets one message for it."""
    cfg["training"]["amp"] = None
    msg = _fails(cfg, "training.amp = None is invalid", "fix: give a valid value (training.amp: one of none")
    assert msg.count("training.amp") == 2, msg  # the field and its description, in one message


def test_a_replicate_is_a_run_of_its_own():
    """Replicate r > 0 writes into results/<run>-rep<r>, replicate 0 into results/<run>: no
    replicate can overwrite another's files, whatever directory it runs in."""
    from turbtl.paths import run_dir

    cfg = resolved()
    assert run_dir(cfg) == "results/tiny" and run_dir(dict(cfg, replicate=3)) == "results/tiny-rep3"


def test_config_warnings_are_printed_by_the_checker_and_snakemake(cfg, tmp_path):
    cfg["systems"]["parked"] = dict(cfg["systems"]["beta"], seed=7)
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump(cfg))
    r = subprocess.run([sys.executable, "-m", "turbtl.config", str(f)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "warning: systems parked is defined" in r.stderr, r.stderr
    r = snakemake(tmp_path, f, "-n", "--quiet", "rules", timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.count("turbtl warning: systems parked is defined") == 1, r.stderr[-2000:]


def test_time_step_fix_names_a_step_that_divides_the_sample_interval(cfg):
    """The fix of a too large dt (DNS and LES) names the limit and a step below it that
    divides the sample interval, and the config with that step passes."""
    import re

    from turbtl.config_checks import _is_multiple

    cfg["systems"]["high_re"]["dt"] = 8e-3
    cfg["les"]["dt"] = 0.05
    msg = _fails(cfg, "time step too large for system 'high_re'", "les.dt = 0.05 too large for the LES of system")
    dns = re.search(r"reduce systems\.high_re\.dt to at most ([0-9.e-]+) \(e\.g\. ([0-9.e-]+), which divides", msg)
    les = [float(x) for x in re.findall(r"reduce les\.dt to at most [0-9.e-]+ \(e\.g\. ([0-9.e-]+),", msg)]
    assert dns and len(les) == 3, msg
    limit, eg = float(dns.group(1)), float(dns.group(2))
    assert 0.5 * limit < eg <= limit and _is_multiple(cfg["systems"]["high_re"]["sample_interval"], eg)
    cfg["systems"]["high_re"]["dt"] = eg
    cfg["les"]["dt"] = min(les)
    validate_config(cfg)


def test_a_configfile_extends_config_yaml(tmp_path):
    """A --configfile is an overlay: it states only what it changes and gets its own run (its
    file's name), every other value is config.yaml's."""
    from turbtl.config import load_configs, name_run

    extra = tmp_path / "fewer-epochs.yaml"
    extra.write_text("training: {epochs: 5}\n")
    cfg, overlays = load_configs([extra])
    validate_config(name_run(cfg, overlays))
    default = validate_config(load_configs()[0])
    assert cfg["training"]["epochs"] == 5 and cfg["run"] == "fewer-epochs" and default["run"] == "default"
    assert {k: v for k, v in cfg.items() if k not in ("training", "run")} == \
        {k: v for k, v in default.items() if k not in ("training", "run")}


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
    "key indented too deep": ("  kf: 4\n", "    kf: 4\n", (0, 7), "indent this key"),
    "key indented too little": ("  kf: 4\n", " kf: 4\n", (0, 2), "indent this key"),
    "tab": ("  kf: 4\n", "\tkf: 4\n", (0, 1), "indent with spaces"),
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
    assert line == 16  # config.yaml's own targets line: the test breaks what it means to break
    with pytest.raises(ConfigError, match=r"while parsing a flow sequence that starts at line 16, column 10\)"):
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
    p, line = _broken(tmp_path, "  high_kf: {kf: 8,", "  beta: {kf: 8,")
    with pytest.raises(ConfigError, match=rf"duplicate key 'beta' \(line \d+ and line {line}\) in {p}; fix:"):
        check_yaml_file(p)


@pytest.mark.slow
def test_snakemake_reports_yaml_error_of_default_config_with_line(tmp_path):
    """A syntax error in the embedded config.yaml (the Snakefile's own, read before any overlay):
    Snakemake stops with the file, line and fix.  Run on a copy of the workflow whose config.yaml
    is broken."""
    import shutil

    for part in ("Snakefile", "workflow", "turbtl", "profiles"):
        (shutil.copytree if (REPO / part).is_dir() else shutil.copy)(REPO / part, tmp_path / part)
    p, line = _broken(tmp_path, "  kf: 4\n", "    kf: 4\n", name="config.yaml")
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(tmp_path / "Snakefile"), "--directory", str(tmp_path),
           "-n"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    out = r.stdout + r.stderr  # Snakemake prints its errors to stdout
    assert r.returncode != 0
    assert f"YAML syntax error in config file {p}, line {line}, column 7:" in out, out
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


def test_decaying_flow_is_checked_before_any_work(cfg):
    """forcing: none needs initial_energy (named with the fix); a wrong forcing is named; a
    decaying target's LES must fit its whole run (les.time, not only les.cc_time) into a test
    member, since it is scored against the filtered DNS of its own window."""
    cfg["systems"]["beta"].update(forcing="none", beta=0.0, mu=0.0)
    msg = _fails(copy.deepcopy(cfg), "systems.beta has forcing: none but no initial_energy",
                 "add systems.beta.initial_energy")
    assert msg.count("no initial_energy") == 1, msg  # the DNS's and the LES's screens say it once
    bad = copy.deepcopy(cfg)
    bad["systems"]["beta"]["forcing"] = "sinusoidal"
    _fails(bad, "systems.beta.forcing", "kolmogorov")
    cfg["systems"]["beta"]["initial_energy"] = 1.0
    s = cfg["systems"]["beta"]
    validate_config(copy.deepcopy(cfg))  # 6 time units in 30 snapshots 0.5 apart: fits
    bad = copy.deepcopy(cfg)
    bad["les"]["time"] = s["snapshots_per_member"] * s["sample_interval"]  # one snapshot too many
    msg = _fails(bad, f"les.time = {bad['les']['time']} spans {s['snapshots_per_member']} snapshots (systems.beta is "
                      "decaying", "lower les.time or raise systems.beta.snapshots_per_member")
    assert "high_re" not in msg  # the forced targets compare with all their test snapshots
    ok = copy.deepcopy(bad)
    ok["systems"]["beta"]["forcing"] = "kolmogorov"
    ok["systems"]["beta"]["mu"] = 0.1
    validate_config(ok)
    # the starts are counted with the whole run's window
    bad = copy.deepcopy(cfg)
    window = math.ceil(bad["les"]["time"] / s["sample_interval"])
    usable = s["test_members"] * (s["snapshots_per_member"] - window)
    bad["les"]["starts"] = usable + 1
    _fails(bad, f"les.starts = {usable + 1} exceeds the {usable} start snapshots of systems.beta",
           "les.time / sample_interval", "or lower les.time")
    bad = copy.deepcopy(cfg)
    bad["les"].update(time=5.8, spinup=5.6)  # no sample time (every 0.5) in (5.6, 5.8]
    _fails(bad, "leave no sample time of systems.beta", "lower les.spinup or raise les.time")
    # an unforced flow's dt is screened on its initial speed
    bad = copy.deepcopy(cfg)
    bad["systems"]["beta"]["initial_energy"] = 400.0
    _fails(bad, "U = 5 sqrt(2 initial_energy)", "reduce systems.beta.dt")


@pytest.mark.parametrize("preset", sorted(p.name for p in (REPO / "presets").glob("*.yaml")))
def test_every_preset_is_a_valid_config(preset):
    """Each preset extends config.yaml (--configfile): config.yaml and the preset pass every check,
    and the preset names its own run."""
    from turbtl.config import load_configs, name_run

    cfg = validate_config(name_run(*load_configs([REPO / "presets" / preset])))
    assert cfg["run"] == preset.removesuffix(".yaml")
