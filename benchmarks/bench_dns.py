"""DNS solver benchmark: step time vs the time of the FFTs it needs, member-steps/s, and
peak memory of run_dns at two snapshot counts (it must not grow: snapshots stream to disk).

    python benchmarks/bench_dns.py [--threads 2] [--write]

Timings are the minimum over interleaved repeats (step and FFT-only measured alternately
in the same run), which is robust to other processes on a shared machine.  --write puts
the results into the "## DNS" section of benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import torch

from turbtl.solver import DNSSolver, FlowParams

README = Path(__file__).with_name("README.md")


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


def write_section(title: str, body: str) -> None:
    text = README.read_text() if README.exists() else "# turbtl benchmarks\n"
    block = f"{title}\n\n{body.rstrip()}\n\n"
    pat = re.compile(rf"^{re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)
    text = pat.sub(lambda m: block, text) if pat.search(text) else text.rstrip() + "\n\n" + block
    README.write_text(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--write", action="store_true")
    ap.add_argument("--no-memory", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for n, members in ((128, 8), (256, 4)):
        p = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=n, dt=1e-3)
        s = DNSSolver(p, members, seed=1)
        for _ in range(20):
            s.step()
        r = interleaved_min({"step": s.step, "fft": s.fft_only})
        rows.append((n, members, r["step"] * 1e3, r["fft"] * 1e3, r["step"] / r["fft"], members / r["step"]))
    lines = ["| grid | members | step (ms) | its FFTs (ms) | step / FFTs | member-steps/s |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {n}^2 | {m} | {st:.3f} | {ft:.3f} | {ra:.2f} | {ms:.0f} |" for n, m, st, ft, ra, ms in rows]
    if not a.no_memory:
        tmp = Path(os.environ.get("TMPDIR", "/tmp"))
        mem = {k: peak_rss_mib(k, a.threads, tmp) for k in (10, 100)}
        lines += ["", "Peak RSS of run_dns (128^2, 8 members, 512 KiB per snapshot): "
                  + ", ".join(f"{k} snapshots {v:.0f} MiB" for k, v in mem.items())
                  + f" (difference {mem[100] - mem[10]:+.1f} MiB for 90 more snapshots = 45 MiB of data)."]
    head = (f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()}-core CPU (shared with other jobs), "
            f"torch {torch.__version__}, {a.threads} threads, float32.  `python benchmarks/bench_dns.py --write`. "
            "Minimum over interleaved repeats of `DNSSolver.step` and `DNSSolver.fft_only` (the 4 inverse + 1 "
            "forward transforms of a step, same buffers).")
    body = head + "\n\n" + "\n".join(lines)
    print(body)
    if a.write:
        write_section("## DNS", body)


if __name__ == "__main__":
    main()
