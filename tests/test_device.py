"""Device handling.  The CUDA tests run wherever torch sees a GPU (CI has none: skipped
there) and check that each stage gives the CPU's result up to float tolerance, and that the
DNS's GPU speed-ups (CUDA graph, compiled update) and its resume give the eager GPU result."""
import numpy as np
import pytest
import torch

from turbtl import TurbtlError
from turbtl.advection import FORMS  # dns.nonlinear: the default and the older form
from turbtl.runtime import resolve_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TurbtlError, match="fix: set 'device: auto' or 'device: cpu'"):
            resolve_device("cuda")


@cuda
@pytest.mark.parametrize("nonlinear", FORMS)
def test_dns_cuda_matches_cpu(nonlinear):
    from turbtl.solver import DNSSolver, FlowParams

    p = FlowParams.from_config(dict(Re=1000, kf=4, beta=20.0, mu=0.1, n_dns=64, n_les=16, dt=2e-3), "gpu")
    runs = []
    for dev in ("cpu", "cuda"):
        s = DNSSolver(p, 3, device=dev, dtype=torch.float64, seed=5, nonlinear=nonlinear)
        s.advance(200)
        runs.append(s.omega.cpu().numpy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-9, atol=1e-9 * np.abs(runs[0]).max())


@cuda
def test_sgs_cuda_matches_cpu():
    from turbtl.filters import sgs_fields

    om = torch.randn(4, 64, 64, dtype=torch.float64)
    cpu = sgs_fields(om, 16)
    gpu = sgs_fields(om.cuda(), 16)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=1e-10, atol=1e-12)


@cuda
def test_spectra_on_cuda_match_cpu():
    """power_spectrum of a CUDA tensor (transformed and shell-summed on the GPU) and the
    activation spectra built on it give the CPU's numbers."""
    from turbtl.diagnostics import activation_spectra
    from turbtl.network import NetConfig, SGSNet
    from turbtl.spectra import power_spectrum

    x = torch.randn(3, 5, 32, 32)
    np.testing.assert_allclose(power_spectrum(x.cuda(), average=False)[1], power_spectrum(x, average=False)[1],
                               rtol=1e-10)
    torch.manual_seed(0)
    net = SGSNet(NetConfig(depth=3, channels=4)).double().eval()
    xi = torch.randn(2, 2, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        cpu = activation_spectra(net, xi, [1, 2, 3])[1]
        gpu = activation_spectra(net.cuda(), xi, [1, 2, 3])[1]
    np.testing.assert_allclose(gpu, cpu, rtol=1e-9, atol=1e-14)


@cuda
def test_network_and_retraining_on_cuda_match_cpu():
    from turbtl.data import Normaliser
    from turbtl.network import SGSNet
    from turbtl.transfer import retrain_layer

    torch.manual_seed(0)
    net = SGSNet(depth=4, channels=8)
    x = np.random.default_rng(0).standard_normal((6, 2, 16, 16)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((6, 1, 16, 16)).astype(np.float32)
    norm = Normaliser.fit(x, y)
    with torch.no_grad():
        a = net(torch.from_numpy(x))
        b = net.cuda()(torch.from_numpy(x).cuda()).cpu()
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    kw = dict(epochs=2, batch_size=3, lr=1e-3, seed=0)
    m_cpu, _ = retrain_layer(net.cpu(), 2, x, y, norm, device="cpu", **kw)
    m_gpu, _ = retrain_layer(net.cpu(), 2, x, y, norm, device="cuda", **kw)
    torch.testing.assert_close(m_gpu.layer(2).weight.cpu(), m_cpu.layer(2).weight, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(m_gpu.layer(3).weight.cpu(), net.layer(3).weight, rtol=0, atol=0)


def _pair(device, n=64, beta=20.0, dtype=torch.float32, check_every=20, nonlinear="basdevant", **accel):
    """An eager DNS and one with the speed-ups ``accel``, from the same state, both in the
    form ``nonlinear`` of the advection term."""
    from turbtl.solver import DNSSolver, FlowParams

    p = FlowParams(Re=1000.0, kf=4, beta=beta, mu=0.1, n=n, dt=1e-3, name="gpu")
    kw = dict(device=device, dtype=dtype, seed=5, check_every=check_every, nonlinear=nonlinear)
    eager = DNSSolver(p, 3, **kw)
    fast = DNSSolver(p, 3, **kw, **accel)
    return eager, fast


def _rel(a, b):
    return ((a - b).abs().max() / a.abs().max()).item()


@cuda
@pytest.mark.parametrize("nonlinear", FORMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_dns_cuda_graph_matches_eager(dtype, nonlinear):
    """Replaying the captured block of steps gives the eager state (the same kernels)."""
    eager, graph = _pair("cuda", dtype=dtype, nonlinear=nonlinear, cuda_graph="on")
    assert graph.acceleration["cuda_graph"] == 20
    eager.advance(205)
    graph.advance(205)  # Euler step, a warm-up block, replays, and 5 eager steps at the end
    assert graph._graph is not None and graph.nstep == eager.nstep == 205 and graph.t == eager.t
    tol = 1e-6 if dtype == torch.float32 else 1e-13
    assert _rel(eager.omega_hat, graph.omega_hat) < tol and _rel(eager._H, graph._H) < tol
    assert graph.max_cfl == pytest.approx(eager.max_cfl, rel=tol)


def _compile_works_here() -> bool:
    """Whether torch.compile makes CUDA kernels on this machine at all (Triton and a C
    compiler): without them dns.compile: auto steps eagerly, and there is nothing to test."""
    try:
        return bool(torch.compile(lambda x: x * 2 + 1)(torch.ones(4, device="cuda")).sum() == 12)
    except Exception:  # noqa: BLE001
        return False


@cuda
@pytest.mark.parametrize("nonlinear", FORMS)
def test_dns_cuda_compiled_and_graph_match_eager(nonlinear):
    """The compiled update (with and without a CUDA graph) agrees with eager to round-off;
    in the basdevant form that includes the compiled spectral combination."""
    if not _compile_works_here():
        pytest.skip("torch.compile cannot make CUDA kernels here (Triton or a C compiler missing)")
    for accel in (dict(compile="on"), dict(compile="on", cuda_graph="on")):
        eager, fast = _pair("cuda", nonlinear=nonlinear, **accel)
        eager.advance(200)
        fast.advance(200)
        assert fast.acceleration["compile"] and fast._fused is not None, "the compiled path fell back"
        assert _rel(eager.omega_hat, fast.omega_hat) < 1e-4, accel


@cuda
@pytest.mark.parametrize("nonlinear", FORMS)
def test_dns_cuda_banded_passes_match_eager(nonlinear):
    """dns.band on the GPU (with the CUDA graph; and compiled, if torch.compile works here):
    the state of the full eager step."""
    variants = [dict(band="on", cuda_graph="on")]
    if _compile_works_here():
        variants.append(dict(band="on", cuda_graph="on", compile="on"))
    for accel in variants:
        eager, fast = _pair("cuda", nonlinear=nonlinear, **accel)
        assert fast.acceleration["band"], accel
        eager.advance(200)
        fast.advance(200)
        tol = 1e-4 if accel.get("compile") else 1e-6
        assert _rel(eager.omega_hat, fast.omega_hat) < tol and _rel(eager._H, fast._H) < tol, accel


@cuda
@pytest.mark.parametrize("nonlinear", FORMS)
@pytest.mark.parametrize("prune", ["inverse", "both"])
def test_dns_cuda_pruned_transforms_match_eager(prune, nonlinear):
    """dns.prune on the GPU (with the band and the CUDA graph): cuFFT's 1D passes round
    differently from its 2D plan, so the state of the full eager step to round-off."""
    eager, fast = _pair("cuda", nonlinear=nonlinear, prune=prune, band="on", cuda_graph="on")
    assert fast.acceleration["prune"] == prune
    eager.advance(200)
    fast.advance(200)
    assert _rel(eager.omega_hat, fast.omega_hat) < 1e-5 and _rel(eager._H, fast._H) < 1e-5


@cuda
def test_run_dns_on_cuda_resumes(tmp_path, monkeypatch):
    """A crash on the GPU (CUDA graph on) keeps the last checkpoint; the rerun ends where an
    uninterrupted GPU run ends (to round-off: the graph blocks fall differently)."""
    import xarray as xr

    from turbtl.solver import run_dns
    from turbtl.stepper import Stepper

    s = dict(name="g", Re=100.0, kf=4, beta=0.0, mu=0.1, n_dns=32, n_les=16, dt=4e-3, spinup_time=0.2,
             sample_interval=0.08, snapshots_per_member=6, members=3, seed=5)
    cfg = dict(precision="float32", cfl_max=1.0, check_every=10, resolution_decades=0.0, cuda_graph="on",
               checkpoint_minutes=1e-9)
    run_dns(s, tmp_path / "ref.nc", dns_cfg=cfg, device="cuda", progress=False)
    check = Stepper.check

    def crash(self):
        if self.nstep == 140:
            raise RuntimeError("simulated crash")
        return check(self)

    monkeypatch.setattr(Stepper, "check", crash)
    with pytest.raises(RuntimeError):
        run_dns(s, tmp_path / "g.nc", dns_cfg=cfg, device="cuda", progress=False)
    monkeypatch.setattr(Stepper, "check", check)
    info = run_dns(s, tmp_path / "g.nc", dns_cfg=cfg, device="cuda", progress=False)
    assert info["resumes"] == 1 and info["acceleration"]["cuda_graph"] == 10
    with xr.open_dataset(tmp_path / "ref.nc") as a, xr.open_dataset(tmp_path / "g.nc") as b:
        np.testing.assert_allclose(b.omega.values, a.omega.values, rtol=0, atol=1e-5 * float(abs(a.omega).max()))


def test_gpu_quick_preset_plans_the_full_dag(tmp_path):
    """presets/gpu-quick.yaml (runs without a GPU): it validates, and plans every stage at the
    study's LES grid and network, with the DNS jobs' GPU settings in the config."""
    import re
    import subprocess
    import sys

    from helpers_workflow import REPO, snakemake

    preset = REPO / "presets" / "gpu-quick.yaml"
    r = subprocess.run([sys.executable, "-m", "turbtl.config", str(preset)], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0 and "config OK" in r.stdout, r.stdout + r.stderr
    from turbtl.config import load_configs, name_run, validate_config

    cfg = validate_config(name_run(*load_configs([preset])))
    assert {cfg["systems"][s]["n_les"] for s in [cfg["base"], *cfg["targets"]]} == {128}
    assert cfg["network"]["channels"] == 64 and cfg["run"] == "gpu-quick"
    r = snakemake(tmp_path, preset, "-n", "--cores", "16")
    assert r.returncode == 0, r.stderr[-3000:]
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", r.stdout + r.stderr, re.M))
    for rule in ("dns", "filter", "train_base", "transfer_layer", "transfer_baseline", "predict", "compare",
                 "figures_target", "summary"):
        assert int(counts.get(rule, 0)) >= 1, rule
    assert counts["transfer_layer"] == "33" and not (tmp_path / "results").exists()


def test_gpu_benchmark_scripts_dry_run_on_cpu(tmp_path):
    """The scripts that benchmarks/device_check.sh runs on a GPU machine work end to end on
    the CPU at tiny sizes (their GPU code path, minus CUDA), and the shell script parses."""
    import json
    import subprocess
    import sys

    from helpers_workflow import REPO

    def run(*cmd):
        r = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]

    run("bash", "-n", "benchmarks/device_check.sh")
    run(sys.executable, "benchmarks/bench_dns.py", "--threads", "1", "--no-memory", "--gpu-code-on-cpu",
        "--cpu-grids", "16x2", "--cpu-variants", "eager,band,prune_inv,eager+advective", "--gpu-grids", "16x2",
        "--variants", "eager,graph,graph+band+prune,graph+advective", "--seconds", "0.01", "--repeats", "1",
        "--json", str(tmp_path / "dns.json"))
    d = json.loads((tmp_path / "dns.json").read_text())
    assert [r["variant"] for r in d["gpu"]] == ["eager", "graph", "graph+band+prune", "graph+advective"]
    assert [r["variant"] for r in d["cpu"]] == ["eager", "band", "prune_inv", "eager+advective"] and d["cpu"][0]["ratio"] > 0
    # the ratio is against the unpruned 2D FFTs of the row's form in every row (and against the
    # advective form's five in ratio_advective); a pruned variant also has its own
    cpu, gpu = d["cpu"], d["gpu"]
    assert cpu[2]["fft_ms"] == cpu[0]["fft_ms"] != cpu[2]["own_fft_ms"] and cpu[0]["own_fft_ms"] == cpu[0]["fft_ms"]
    assert gpu[2]["pruned"] == "both" and gpu[2]["fft_ms"] == gpu[0]["fft_ms"] != gpu[2]["own_fft_ms"]
    for rows in (cpu, gpu):
        assert [r["form"] for r in rows] == ["basdevant"] * 3 + ["advective"]
        assert rows[3]["fft_ms"] == rows[0]["fft_advective_ms"] == rows[3]["fft_advective_ms"] != rows[0]["fft_ms"]
        assert rows[0]["ratio_advective"] == pytest.approx(rows[0]["step_ms"] / rows[0]["fft_advective_ms"])
    r = subprocess.run([sys.executable, "benchmarks/bench_dns.py", "--render", str(tmp_path / "dns.json")], cwd=REPO,
                       capture_output=True, text=True, timeout=60)
    rows = [ln for ln in r.stdout.splitlines() if ln.startswith("| cpu | 16^2 | 2 |")]
    assert r.returncode == 0 and len(rows) == 8 and "dns.json: " in r.stdout, r.stdout + r.stderr
    run(sys.executable, "benchmarks/bench_reference.py", "--quick", "--variants", "default", "--json", str(tmp_path / "ref.json"))
    d = json.loads((tmp_path / "ref.json").read_text())
    assert "predicted" in d["dns"]["12x64"] and d["training"]["base_none"]["samples_per_s"] > 0
    assert set(d["filter"]) == {"base", "high_re", "high_kf", "beta"}



def test_benchmark_write_section_keeps_hand_written_tables(tmp_path):
    """``--write`` of the benchmarks replaces only its marked block: the hand-written tables
    and readings of the section, and the other sections, stay."""
    import sys

    from helpers_workflow import REPO

    sys.path.insert(0, str(REPO / "benchmarks"))
    from bench_dns import write_section

    md = tmp_path / "README.md"
    md.write_text("# b\n\n## DNS\n\nhand table 1\n\n## Filtering\n\nold filter\n")
    write_section("## DNS", "run 1", md)
    assert md.read_text() == ("# b\n\n## DNS\n\n<!-- bench:dns:start -->\nrun 1\n<!-- bench:dns:end -->\n\n"
                              "hand table 1\n\n## Filtering\n\nold filter\n")
    write_section("## DNS", "run 2\n\n| a |", md)
    text = md.read_text()
    assert "run 1" not in text and "run 2\n\n| a |\n<!-- bench:dns:end -->" in text
    assert text.count("hand table 1") == 1 and text.endswith("## Filtering\n\nold filter\n")
    write_section("## A-posteriori LES", "les", md)
    assert md.read_text().endswith("old filter\n\n## A-posteriori LES\n\n<!-- bench:a-posteriori-les:start -->\n"
                                   "les\n<!-- bench:a-posteriori-les:end -->\n")


def test_wheelhouse_follows_requirements_for_the_target_python(monkeypatch):
    """benchmarks/make_wheelhouse.py (offline part): the closure of turbtl's requirements for the
    GPU machine's Python holds Snakemake's and netCDF4's dependencies, leaves out what that
    machine has (and does not follow it), and evaluates markers for the target Python, not this
    one.  Needs turbtl's installed metadata (pip install -e .): skipped on the GPU machine,
    where device_check.sh puts the repository on PYTHONPATH only."""
    import importlib.metadata as md

    from helpers_workflow import REPO

    try:
        md.version("turbtl")
    except md.PackageNotFoundError:
        pytest.skip("turbtl is not pip-installed here (its requirements come from its metadata)")
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    from make_wheelhouse import DEVICE_HAS, marker_env, requirement_closure, turbtl_roots

    env = marker_env("3.12")
    pins = requirement_closure(turbtl_roots(env), env)
    assert {"snakemake", "netcdf4", "cftime", "connection-pool", "pyyaml", "jsonschema", "tqdm"} <= set(pins)
    assert not set(pins) & DEVICE_HAS and "torch" not in pins and "numpy" not in pins
    assert "snakemake-executor-plugin-slurm" not in pins  # an extra of turbtl, not needed there
    # markers: a back-port needed before 3.12 only; a dependency of a machine-provided package
    # (pandas -> python-dateutil) is not followed; a package not installed here is kept, unpinned
    fake = {"a": ["b; python_version < '3.12'", "c", "pandas", "d"], "b": [], "c": [], "pandas": ["python-dateutil"]}

    def version(name):
        if name == "d":
            raise md.PackageNotFoundError(name)
        return "1.0"

    monkeypatch.setattr(md, "version", version)
    assert requirement_closure(["a"], marker_env("3.12"), requires=fake.get) == {"a": "1.0", "c": "1.0", "d": None}
    assert set(requirement_closure(["a"], marker_env("3.11"), requires=fake.get)) == {"a", "b", "c", "d"}


@cuda
def test_aposteriori_job_on_cuda_matches_cpu(tmp_path):
    """The whole a-posteriori job (LES, Smagorinsky and network closures, scores) on the GPU:
    same closures, stable, and the scores of the CPU run to float32 round-off over a short run
    (the LES is chaotic: a long run would diverge)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).parent))
    from test_les import LES_CFG, _job_inputs

    from turbtl.aposteriori import run_aposteriori_job

    data, model, lw = _job_inputs(tmp_path)
    cfg = dict(LES_CFG, time=0.4, spinup=0.1, cc_time=0.0)
    out = {dev: run_aposteriori_job(data, model, lw, {}, tmp_path / f"{dev}.json", tmp_path / f"{dev}.nc", les_cfg=cfg,
                                    seed=0, cfl_max=0.5, device=dev, progress=False)
           for dev in ("cpu", "cuda")}
    assert list(out["cuda"]["closures"]) == list(out["cpu"]["closures"])
    for name, c in out["cuda"]["closures"].items():
        assert c["stable"], name
        assert c["energy_ratio"] == pytest.approx(out["cpu"]["closures"][name]["energy_ratio"], rel=1e-3), name
