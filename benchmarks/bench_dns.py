"""DNS solver benchmark: step time vs the time of the FFTs it needs, member-steps/s, and
peak memory of run_dns at two snapshot counts (it must not grow: snapshots stream to disk).

    python benchmarks/bench_dns.py [--threads 2] [--write] [--json out.json]
    python benchmarks/bench_dns.py --no-cpu --gpu-grids 128x8,1024x12,2048x4 --json $OUT/dns.json

CPU: per grid (``--cpu-grids``, default 128^2 x 8 and 256^2 x 4 members), the minimum over
interleaved repeats of ``DNSSolver.step`` and ``DNSSolver.fft_only`` (the 2D transforms of a
step, on its buffers: 2 inverse + 2 forward in the default basdevant form of the tendency,
4 inverse + 1 forward in the advective one, ``dns.nonlinear``), measured alternately in the
same run, which is robust to other processes on a shared machine.  The CPU path is the eager
step; the rows (``--cpu-variants``): ``eager`` (no speed-up), ``band`` (dns.band: on, the
element-wise passes on the 2/3-dealiased blocks only, which the pipeline uses on CUDA only),
``prune_inv`` (dns.prune: inverse, what ``auto`` does on the CPU: the inverse transforms
skip the columns the 2/3 rule zeroes), ``prune`` (dns.prune: both) and ``band+prune_inv``,
each also as ``...+advective`` (dns.nonlinear: advective).  Every row's ratio is against the
2D transforms of the unpruned step of its form; ``step / 5 FFTs`` is against the advective
form's five (the issue's baseline, what a step cost before the basdevant form); the pruned
transforms' own time is the ``own FFTs`` column.

GPU (when torch sees CUDA): per grid (``--gpu-grids``, default 128^2 x 8, 1024^2 x 12 and
2048^2 x 4, the issue's shapes) and precision, the variants of ``--variants``:
``eager``, ``graph`` (dns.cuda_graph: blocks of check_every steps replayed as a CUDA
graph), ``compiled`` (dns.compile: the element-wise update and the tendency's products as
torch.compile kernels), ``compiled+graph``, and ``graph+band`` / ``compiled+graph+band``
(dns.band: the element-wise passes on the 2/3-dealiased blocks only), the same with
``+prune_inv`` / ``+prune`` (dns.prune: inverse / both), and each of them as ``...+advective``
(dns.nonlinear: advective).  Each is timed through ``advance`` with
check_every = 100 (the reference preset's), so the guard's host sync every 100 steps is
included, as in a run; the FFT time is that of an unpruned solver's ``fft_only`` of each form
over the same number of steps (and, for a pruned variant, its own ``fft_only`` too).
Minimum over interleaved repeats of ``--seconds`` each, after a warm-up that includes the
capture and the compilation (their one-off cost is reported as ``setup_s``).  The time step
is scaled as 0.128/n so that every grid runs at the same CFL number.

``--json PATH`` writes every number (and the machine, the card, the versions) to PATH, so
that a run on a GPU machine can bring them back; ``--write`` puts the tables into the
generated block at the top of the "## DNS" section of benchmarks/README.md; the section's
hand-written tables and readings below it stay (``write_section``).
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from turbtl.solver import PRECISIONS, DNSSolver, FlowParams

README = Path(__file__).with_name("README.md")
VARIANTS = {"eager": dict(), "graph": dict(cuda_graph="on"), "compiled": dict(compile="on"),
            "compiled+graph": dict(compile="on", cuda_graph="on"),
            "graph+band": dict(cuda_graph="on", band="on"),
            "compiled+graph+band": dict(compile="on", cuda_graph="on", band="on"),
            "graph+band+prune_inv": dict(cuda_graph="on", band="on", prune="inverse"),
            "graph+band+prune": dict(cuda_graph="on", band="on", prune="both"),
            "compiled+graph+band+prune_inv": dict(compile="on", cuda_graph="on", band="on", prune="inverse"),
            "compiled+graph+band+prune": dict(compile="on", cuda_graph="on", band="on", prune="both")}
#: the same in the advective form of the tendency (dns.nonlinear: advective, 5 transforms a step)
VARIANTS.update({f"{v}+advective": dict(kw, nonlinear="advective") for v, kw in list(VARIANTS.items())})
#: the CPU rows: the eager step with each speed-up that works on the CPU, in either form
CPU_VARIANTS = {"eager": dict(), "band": dict(band="on"), "prune_inv": dict(prune="inverse"),
                "prune": dict(prune="both"), "band+prune_inv": dict(band="on", prune="inverse")}
CPU_VARIANTS.update({f"{v}+advective": dict(kw, nonlinear="advective") for v, kw in list(CPU_VARIANTS.items())})


def form_of(variant: str) -> str:
    """The dns.nonlinear of a variant's name."""
    return "advective" if variant.endswith("+advective") else "basdevant"


def interleaved_min(fns: dict, repeats: int = 15, inner: int = 10) -> dict:
    best = {k: float("inf") for k in fns}
    for _ in range(repeats):
        for k, f in fns.items():
            t = time.perf_counter()
            for _ in range(inner):
                f()
            best[k] = min(best[k], (time.perf_counter() - t) / inner)
    return best


_RSS = textwrap.dedent("""
    import resource, sys, torch
    from turbtl.solver import run_dns
    torch.set_num_threads(int(sys.argv[3]))
    s = dict(name="m", Re=1000.0, kf=4, beta=0.0, mu=0.1, n_dns=128, n_les=32, dt=1e-3, spinup_time=0.0,
             sample_interval=2e-3, snapshots_per_member=int(sys.argv[1]), members=8, seed=1)
    run_dns(s, sys.argv[2], dns_cfg=dict(precision="float32", cfl_max=1.0, check_every=50,
            resolution_decades=0.0), progress=False)
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def peak_rss_mib(nsnap: int, threads: int, tmp: Path) -> float:
    out = tmp / f"bench_dns_{nsnap}.nc"
    r = subprocess.run([sys.executable, "-c", _RSS, str(nsnap), str(out), str(threads)],
                       capture_output=True, text=True, check=True)
    out.unlink(missing_ok=True)
    return int(r.stdout.split()[-1]) / 1024


def write_section(title: str, body: str, readme: Path = README) -> None:
    """Put ``body`` into the generated block of section ``title`` of benchmarks/README.md.

    The block lies between ``<!-- bench:SLUG:start -->`` and ``<!-- bench:SLUG:end -->``
    (SLUG: the title in lower case, e.g. ``dns``).  Only that block is replaced; without
    one, a new block goes right under the title, and the section's hand-written tables and
    readings stay below it.  A missing section is appended.
    """
    text = readme.read_text() if readme.exists() else "# turbtl benchmarks\n"
    slug = re.sub(r"[^a-z0-9]+", "-", title.lstrip("#").strip().lower()).strip("-")
    start, end = f"<!-- bench:{slug}:start -->", f"<!-- bench:{slug}:end -->"
    block = f"{start}\n{body.rstrip()}\n{end}"
    marked = re.compile(rf"{re.escape(start)}\n.*?{re.escape(end)}", re.S)
    heading = re.compile(rf"^{re.escape(title)}\n\n?", re.M)
    if marked.search(text):
        text = marked.sub(lambda m: block, text)
    elif heading.search(text):
        text = heading.sub(lambda m: f"{title}\n\n{block}\n\n", text, count=1)
    else:
        text = text.rstrip() + f"\n\n{title}\n\n{block}\n"
    readme.write_text(text)


def grids(spec: str) -> list[tuple[int, int]]:
    """'128x8,256x4' -> [(128, 8), (256, 4)] (grid x members)."""
    return [tuple(int(v) for v in g.lower().split("x")) for g in spec.split(",") if g]


def params(n: int) -> FlowParams:
    return FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=n, dt=min(1e-3, 0.128 / n), name=f"bench{n}")


def bench_cpu(grid_list, precision: str, repeats: int, variants=tuple(CPU_VARIANTS)) -> list[dict]:
    """Per grid: the eager step with each of ``variants`` (:data:`CPU_VARIANTS`), the 2D
    FFTs of an unpruned step of each form (``fft_ms``: of the variant's form, the ratio's
    denominator; ``fft_advective_ms``: the advective form's five, the issue's baseline) and,
    for a variant with pruned transforms, its own FFTs (``own_fft_ms``), all interleaved."""
    rows = []
    for n, members in grid_list:
        mk = lambda **kw: DNSSolver(params(n), members, seed=1, dtype=PRECISIONS[precision], **kw)  # noqa: E731
        solvers = {v: mk(**CPU_VARIANTS[v]) for v in ("eager", *[v for v in variants if v != "eager"])}
        refs = {form: mk(nonlinear=form) for form in ("basdevant", "advective")}  # unpruned: their 2D FFTs
        for _ in range(20):
            for s in solvers.values():
                s.step()
        fns = {v: s.step for v, s in solvers.items()}
        fns.update({f"fft:{form}": s.fft_only for form, s in refs.items()})
        fns.update({f"own:{v}": s.fft_only for v, s in solvers.items() if s.pruned != "off"})
        r = interleaved_min(fns, repeats=repeats)
        for v, s in solvers.items():
            if v not in variants:
                continue
            fft = r[f"fft:{form_of(v)}"]
            rows.append(dict(device="cpu", grid=n, members=members, precision=precision, variant=v,
                             form=form_of(v), step_ms=r[v] * 1e3, fft_ms=fft * 1e3, ratio=r[v] / fft,
                             fft_advective_ms=r["fft:advective"] * 1e3, ratio_advective=r[v] / r["fft:advective"],
                             own_fft_ms=r.get(f"own:{v}", fft) * 1e3, member_steps_per_s=members / r[v],
                             speedup_vs_eager=r["eager"] / r[v]))
    return rows


def sync(device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def timed(fn, device) -> float:
    """Wall time of ``fn()``, the device synchronised before and after."""
    sync(device)
    t = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - t


def bench_gpu(grid_list, precisions, variants, seconds: float, repeats: int, log=print, device="cuda",
              rows: list | None = None, on_grid=None) -> list[dict]:
    """Per grid and precision: every variant and the FFTs, interleaved (module docstring).
    ``device="cpu"`` runs the same code on the CPU (``--gpu-code-on-cpu``: a check of the
    script, not a measurement).  Rows are appended to ``rows``; ``on_grid()`` is called after
    each grid (main writes the JSON then, so that a run cut short keeps what it measured)."""
    rows = [] if rows is None else rows
    for precision in precisions:
        for n, members in grid_list:
            rows += _bench_gpu_grid(n, members, precision, variants, seconds, repeats, log, device)
            if device == "cuda":
                torch.cuda.empty_cache()
            if on_grid is not None:
                on_grid()
    return rows


def _bench_gpu_grid(n, members, precision, variants, seconds, repeats, log, device) -> list[dict]:
    cuda = device == "cuda"
    rows, solvers, setup = [], {}, {}
    for v in variants:
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        try:  # the warm-up: Euler step, an eager block, the capture and the compilation
            s = DNSSolver(params(n), members, device=device, dtype=PRECISIONS[precision], seed=1, check_every=100,
                          **VARIANTS[v])
            setup[v] = timed(lambda: s.advance(300), device)  # ends on a block: timed runs are whole blocks
        except Exception as e:  # noqa: BLE001 - one failed variant must not stop the others
            log(f"  {n}^2 x {members} {precision} {v}: FAILED ({type(e).__name__}: {str(e)[:200]})")
            rows.append(dict(device=device, grid=n, members=members, precision=precision, variant=v,
                             error=f"{type(e).__name__}: {str(e)[:300]}"))
            continue
        solvers[v] = (s, torch.cuda.max_memory_allocated() / 2**20 if cuda else None)
    if not solvers:
        return rows
    first = next(iter(solvers.values()))[0]
    # steps per repeat: about `seconds` of the first variant, a multiple of check_every
    per_step = timed(lambda: first.advance(100), device) / 100
    nsteps = max(100, int(round(seconds / per_step / 100)) * 100)
    # the ratio's denominator: the 2D transforms of a step of each form (a solver without pruned
    # ones); a variant with pruned transforms also gets its own FFTs timed
    refs = {}
    for form in ("basdevant", "advective"):
        unpruned = [s for s, _ in solvers.values() if s.pruned == "off" and s.tendency.form == form]
        refs[f"fft:{form}"] = unpruned[0] if unpruned else DNSSolver(
            params(n), members, device=device, dtype=PRECISIONS[precision], seed=1, check_every=100, nonlinear=form)
    fft_of = {**refs, **{f"own:{v}": s for v, (s, _) in solvers.items() if s.pruned != "off"}}

    def ffts(s):
        def run():
            for _ in range(nsteps):
                s.fft_only()
        return run

    best = {k: float("inf") for k in [*solvers, *fft_of]}
    for _ in range(repeats):
        for v, (s, _) in solvers.items():
            best[v] = min(best[v], timed(lambda: s.advance(nsteps), device) / nsteps)
        for k, s in fft_of.items():
            best[k] = min(best[k], timed(ffts(s), device) / nsteps)
    for v, (s, mem) in solvers.items():
        fft = best[f"fft:{form_of(v)}"]
        row = dict(device=device, grid=n, members=members, precision=precision, variant=v, form=form_of(v),
                   step_ms=best[v] * 1e3, fft_ms=fft * 1e3, ratio=best[v] / fft,
                   fft_advective_ms=best["fft:advective"] * 1e3, ratio_advective=best[v] / best["fft:advective"],
                   own_fft_ms=best.get(f"own:{v}", fft) * 1e3, pruned=s.pruned,
                   member_steps_per_s=members / best[v], speedup_vs_eager=best.get("eager", float("nan")) / best[v],
                   steps_timed=nsteps, setup_s=setup[v], peak_mem_mib=mem,
                   graph_steps=s.acceleration["cuda_graph"], graph_captured=s._graph is not None,
                   compiled=s._fused is not None, banded=s.banded)
        rows.append(row)
        log(f"  {n}^2 x {members} {precision} {v:15s} step {row['step_ms']:.4f} ms, FFTs {row['fft_ms']:.4f} ms, "
            f"ratio {row['ratio']:.2f}, x{row['speedup_vs_eager']:.2f} vs eager, setup {setup[v]:.1f} s")
    return rows


def table(rows: list[dict]) -> list[str]:
    """Markdown rows; "2D FFTs" is the unpruned transforms of a step of the row's form (4 for
    basdevant, 5 for advective; the ratio is against them), "/ 5 FFTs" the step against the
    advective form's five (the issue's baseline: what a step cost before the basdevant form),
    "own FFTs" those the variant makes (pruned ones where it prunes).  Rows of JSON files
    written before the two forms are all advective."""
    out = ["| device | grid | members | precision | variant | step (ms) | 2D FFTs (ms) | step / 2D FFTs | "
           "step / 5 FFTs | own FFTs (ms) | member-steps/s |",
           "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        if "error" in r:
            out.append(f"| {r['device']} | {r['grid']}^2 | {r['members']} | {r['precision']} | {r['variant']} | "
                       f"failed: {r['error'][:60]} | | | | | |")
            continue
        own = r.get("own_fft_ms", r["fft_ms"])
        out.append(f"| {r['device']} | {r['grid']}^2 | {r['members']} | {r['precision']} | {r['variant']} | "
                   f"{r['step_ms']:.3f} | {r['fft_ms']:.3f} | {r['ratio']:.2f} | "
                   f"{r.get('ratio_advective', r['ratio']):.2f} | {own:.3f} | {r['member_steps_per_s']:.0f} |")
    return out


def render(paths) -> None:
    """The table of the rows of earlier ``--json`` files, each file's machine named above it."""
    rows = []
    for p in paths:
        d = json.loads(Path(p).read_text())
        m = d["machine"]
        print(f"{Path(p).name}: {m['date']}, {m.get('gpu', 'no GPU')} (CUDA {m.get('cuda')}), torch {m['torch']}, "
              f"{m['cpu_count']}-core {m['machine']} host")
        rows += d["cpu"] + d["gpu"]
    print("\n".join(table(rows)))


def machine() -> dict:
    m = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "machine": platform.machine(),
         "processor": platform.processor(), "cpu_count": os.cpu_count(), "python": platform.python_version(),
         "torch": torch.__version__, "threads": torch.get_num_threads(), "load_avg": list(os.getloadavg())}
    if torch.cuda.is_available():
        p = torch.cuda.get_device_properties(0)
        m.update(gpu=torch.cuda.get_device_name(0), gpu_memory_gib=p.total_memory / 2**30, cuda=torch.version.cuda,
                 capability=f"{p.major}.{p.minor}")
    return m


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true", help="write the tables into benchmarks/README.md")
    ap.add_argument("--json", type=Path, help="write every number to this JSON file")
    ap.add_argument("--no-memory", action="store_true", help="skip the run_dns peak-RSS measurement")
    ap.add_argument("--no-cpu", action="store_true", help="skip the CPU step timings")
    ap.add_argument("--cpu-grids", default="128x8,256x4")
    ap.add_argument("--cpu-variants", default=",".join(CPU_VARIANTS), help=f"CPU rows among {', '.join(CPU_VARIANTS)}")
    ap.add_argument("--gpu-grids", default="128x8,1024x12,2048x4")
    ap.add_argument("--precisions", default="float32", help="GPU precisions, e.g. float32,float64")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"GPU variants among {', '.join(VARIANTS)}")
    ap.add_argument("--seconds", type=float, default=0.3, help="GPU: length of one timed repeat")
    ap.add_argument("--repeats", type=int, default=3, help="GPU repeats (CPU: 15)")
    ap.add_argument("--render", type=Path, nargs="+", metavar="JSON",
                    help="print the table of earlier --json runs (e.g. from a GPU machine) and exit")
    ap.add_argument("--gpu-code-on-cpu", action="store_true",
                    help="without CUDA, run the GPU section on the CPU (a dry run of the script, not a measurement)")
    a = ap.parse_args(argv)
    if a.render:
        render(a.render)
        return
    torch.set_num_threads(a.threads)
    info = machine()
    result = {"machine": info, "cpu": [], "gpu": [], "rss_mib": None}
    if not a.no_cpu:
        cpu_variants = [v for v in a.cpu_variants.split(",") if v]
        if set(cpu_variants) - set(CPU_VARIANTS):
            ap.error(f"unknown CPU variants {sorted(set(cpu_variants) - set(CPU_VARIANTS))}")
        result["cpu"] = bench_cpu(grids(a.cpu_grids), "float32", 15, cpu_variants)
    variants = [v for v in a.variants.split(",") if v]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        ap.error(f"unknown variants {sorted(unknown)}: choose among {', '.join(VARIANTS)}")
    def save():
        if a.json:
            a.json.parent.mkdir(parents=True, exist_ok=True)
            a.json.write_text(json.dumps(result, indent=2, default=str) + "\n")

    save()
    if torch.cuda.is_available() or a.gpu_code_on_cpu:
        device = "cuda" if torch.cuda.is_available() else "cpu"
        print(f"GPU: {info.get('gpu', 'none: the GPU section runs on the CPU')} (CUDA {info.get('cuda')})", flush=True)
        bench_gpu(grids(a.gpu_grids), a.precisions.split(","), variants, a.seconds, a.repeats,
                  log=lambda s: print(s, flush=True), device=device, rows=result["gpu"], on_grid=save)
    if not a.no_memory:
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        result["rss_mib"] = {k: peak_rss_mib(k, a.threads, tmp) for k in (10, 100)}
    lines = table(result["cpu"] + result["gpu"])
    if result["rss_mib"]:
        mem = result["rss_mib"]
        lines += ["", "Peak RSS of run_dns (128^2, 8 members, 512 KiB per snapshot): "
                  + ", ".join(f"{k} snapshots {v:.0f} MiB" for k, v in mem.items())
                  + f" (difference {mem[100] - mem[10]:+.1f} MiB for 90 more snapshots = 45 MiB of data)."]
    gpu = f", GPU {info['gpu']} (CUDA {info['cuda']})" if "gpu" in info else ", no GPU"
    head = (f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()}-core CPU (load {info['load_avg'][0]:.1f})"
            f"{gpu}, torch {torch.__version__}, {a.threads} CPU threads.  `python benchmarks/bench_dns.py`.  CPU: "
            "minimum over interleaved repeats of `DNSSolver.step` and `DNSSolver.fft_only` (the 2D transforms of a "
            "step of its form, same buffers: 2 + 2 basdevant, 4 + 1 advective), float32.  GPU: per step through `advance` with "
            "check_every 100, minimum over interleaved repeats.")
    body = head + "\n\n" + "\n".join(lines)
    print(body)
    if a.json:
        save()
        print(f"wrote {a.json}")
    if a.write:
        write_section("## DNS", body)


if __name__ == "__main__":
    main()
