"""Config validation: every bad value fails with a message naming the field and the fix."""
import copy

import pytest
import yaml

from turbtl import ConfigError
from turbtl.config import small_set_size, tl_layers, validate_config

from helpers_workflow import REPO, TINY


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
