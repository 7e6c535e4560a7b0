"""Flows that inherit (flow_defaults, like:), presets as overlays of config.yaml, and runs in
their own folders (turbtl.config_flows, turbtl.config.load_configs / overlay_flows / name_run)."""
import json
import re
import subprocess
import sys

import pytest
import yaml

from turbtl import ConfigError
from turbtl.config import load_configs, name_run, overlay_flows, validate_config
from turbtl.paths import run_dir

from helpers_workflow import REPO, TINY, snakemake

FIXTURES = REPO / "tests" / "fixtures" / "resolved"
#: the config sections a rule passes whole as params (compared as text, key order included);
#: the dns rule leaves its speed and resume keys out (workflow/rules/dns.smk)
WHOLE = ("filter", "network", "training", "predict", "les")
DNS_SPEED = ("checkpoint_minutes", "cuda_graph", "compile", "band", "prune")
#: the resolved configs of config.yaml, each preset and the tiny test config as they were when
#: each was a complete file (tests/fixtures/resolved/*.json, written by the validator of then)
CONFIGS = {"config": [], "tiny": [TINY], **{p.stem: [p] for p in (REPO / "presets").glob("*.yaml")}}


def _load(files):
    cfg, overlays = load_configs(files)
    return validate_config(name_run(cfg, overlays))


def _job_view(cfg: dict) -> dict:
    """What reaches the jobs' params: the running flows (in order, keys in order), the whole
    sections in their key order, every other section as a mapping."""
    running = [cfg["base"], *cfg["targets"]]
    out = {"flows": json.dumps([[n, cfg["systems"][n]] for n in running]),
           "dns": json.dumps({k: v for k, v in cfg["dns"].items() if k not in DNS_SPEED})}
    out |= {k: json.dumps(cfg[k]) for k in WHOLE}
    out |= {k: json.dumps(cfg[k], sort_keys=True) for k in cfg if k not in (*WHOLE, "dns", "systems", "run",
                                                                             "flow_defaults")}
    return out


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_every_config_resolves_to_what_it_was(name):
    """config.yaml, the tiny config and every preset, rewritten with flow_defaults, like: and as
    overlays, give the jobs exactly the params they had as complete files: existing results
    do not rerun (a param is compared as text, so key order counts)."""
    old = json.loads((FIXTURES / f"{name}.json").read_text())
    new = _load(CONFIGS[name])
    assert _job_view(new) == _job_view(old)
    assert new["run"] == {"config": "default"}.get(name, name)


def test_merge_order_schema_flow_defaults_like_then_the_flow():
    cfg = _load([])
    cfg["flow_defaults"] = {"Re": 500, "kf": 5, "n_dns": 96, "n_les": 32, "dt": 2e-3, "mu": 0.2}
    cfg["systems"] = {"base": {"seed": 1},
                      "a": {"like": "base", "Re": 800, "seed": 2},
                      "b": {"like": "a", "kf": 6, "seed": 3}}
    cfg["targets"] = ["a", "b"]
    validate_config(cfg)
    base, a, b = (cfg["systems"][n] for n in ("base", "a", "b"))
    assert base["Re"] == 500 and base["mu"] == 0.2 and base["beta"] == 0.0  # flow_defaults, then the schema's
    assert base["spinup_time"] == 25.0  # the schema's default: flow_defaults left it out
    assert (a["Re"], a["kf"], a["seed"]) == (800, 5, 2)  # like base, then its own keys
    assert (b["Re"], b["kf"], b["seed"]) == (800, 6, 3)  # like a, which is like base
    assert all("like" not in f for f in cfg["systems"].values())
    schema_order = list(yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
                        ["properties"]["systems"]["additionalProperties"]["properties"])
    assert list(b) == [k for k in schema_order if k in b]


@pytest.mark.parametrize("systems,flow_defaults,needle", [
    ({"base": {"seed": 1}, "t": {"like": "ghost"}}, {}, "systems.t.like = 'ghost' is not a flow under `systems:`"),
    ({"base": {"like": "t"}, "t": {"like": "base"}}, {}, "makes a circle of flows"),
    ({"base": {"seed": 1}, "t": {"like": "t"}}, {}, "makes a circle of flows (t -> t)"),
    ({"base": {"seed": 1}, "t": {"seed": 2}}, {"like": "base"}, "flow_defaults.like = 'base'"),
    ({"base": {"seed": 1}, "t": {"seed": 2}}, {"dt": None}, "missing key systems.base.dt; fix: add it to the flow, to "
                                                             "the flow it is `like`, or to flow_defaults"),
])
def test_inheritance_errors_name_the_field_and_the_fix(systems, flow_defaults, needle):
    cfg = _load([])
    cfg["systems"] = systems
    cfg["targets"] = ["t"]
    cfg["flow_defaults"] = dict(cfg["flow_defaults"], **flow_defaults)
    if flow_defaults.get("dt", 0) is None:
        del cfg["flow_defaults"]["dt"]
    with pytest.raises(ConfigError) as exc:
        validate_config(cfg)
    assert needle in str(exc.value) and "fix:" in str(exc.value), str(exc.value)


def test_an_overlay_flow_replaces_config_yamls_flow_of_that_name(tmp_path):
    """A preset's `high_kf` starts from flow_defaults, not from config.yaml's high_kf (whose
    192^2 grid it would inherit unseen); `--config` still changes single keys of a flow."""
    f = tmp_path / "mine.yaml"
    f.write_text("flow_defaults: {n_dns: 160}\nsystems:\n  high_kf: {kf: 6, seed: 3}\n")
    cfg = _load([f])
    assert cfg["systems"]["high_kf"]["n_dns"] == 160 and cfg["systems"]["high_kf"]["kf"] == 6
    assert cfg["systems"]["high_re"]["n_dns"] == 192  # config.yaml's own, untouched
    merged, overlays = load_configs([f])
    overlay_flows(merged, overlays, cli={"systems": {"high_kf": {"Re": 1200}}})
    assert merged["systems"]["high_kf"] == {"kf": 6, "seed": 3, "Re": 1200}


def test_the_run_is_named_by_config_overlay_or_command_line(tmp_path):
    assert _load([])["run"] == "default"
    plain = tmp_path / "my-flows.yaml"
    plain.write_text("targets: [beta]\n")
    named = tmp_path / "other.yaml"
    named.write_text("run: study-a\n")
    assert _load([plain])["run"] == "my-flows"
    assert _load([plain, named])["run"] == "study-a"
    cfg, overlays = load_configs([plain])
    cfg["run"] = "x"
    assert name_run(cfg, overlays, cli={"run": "x"})["run"] == "x"
    assert run_dir(dict(_load([plain]), replicate=2)) == "results/my-flows-rep2"
    bad = tmp_path / "bad name.yaml"
    bad.write_text("targets: [beta]\n")
    with pytest.raises(ConfigError, match="run = 'bad name' is invalid"):
        _load([bad])


def test_resolved_prints_the_merged_config():
    r = subprocess.run([sys.executable, "-m", "turbtl.config", "--resolved", "presets/predictor-study.yaml"],
                       capture_output=True, text=True, cwd=REPO, timeout=120)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert cfg["run"] == "predictor-study" and "like" not in cfg["systems"]["kf8_beta20"]
    assert cfg["systems"]["kf8_beta20"] == dict(cfg["systems"]["kf8"], beta=20.0, dt=5e-4, seed=20)
    assert "config OK: config.yaml + presets/predictor-study.yaml (outputs in results/predictor-study/)" in r.stderr


@pytest.mark.slow
def test_two_configs_never_write_the_same_file(tmp_path):
    """The default config, a preset on the same base flow and a replicate plan disjoint sets of
    files, each under its own results/<run>/, logs and benchmark records included."""
    def planned(*args):
        r = snakemake(tmp_path, *args, "-n", "--forceall")
        assert r.returncode == 0, r.stderr[-3000:]
        return set(re.findall(r"^\s+(?:output|log|benchmark): (.*)$", r.stdout, re.M))

    outs = {"default": planned(REPO / "config.yaml"),
            "decaying-to-forced": planned(REPO / "presets" / "decaying-to-forced.yaml"),
            "default-rep1": planned(REPO / "config.yaml", "--config", "replicate=1")}
    for run, files in outs.items():
        paths = {p for line in files for p in line.split(", ")}
        assert paths and all(p.startswith(f"results/{run}/") for p in paths), (run, sorted(paths)[:5])
    assert not (tmp_path / "results").exists()
