"""Which ``les.dt`` keeps the a-posteriori LES without closure stable, tried on the CPU before a
long GPU run.

    python benchmarks/les_dt_probe.py --Re 5000 --beta 20 --n-dns 512 --n-les 128 \
        --dts 2.5e-3,1.25e-3,6.25e-4 --les-time 2

One DNS member is spun up for ``--spinup`` time units on ``--n-dns`` (the pipeline's solver),
filtered and coarse-grained to ``--n-les`` (the pipeline's filter), and from that field an LES
without closure and one with Smagorinsky's closure (the pipeline's :class:`turbtl.les.LES`)
run for ``--les-time`` at each ``--dts`` (one batch of two members).  The LES without closure
counts as blown up when its vorticity is not finite or its CFL number (checked every 10
steps, no ``cfl_max``) exceeds 5.  It prints, per dt, whether each LES ran through, when the
one without closure blew up, and the largest CFL numbers.  The LES without closure is the
one that stops an ``aposteriori`` job when it blows up (turbtl/les.py).

Why it exists: the LES keeps every mode up to its grid's Nyquist and, without closure, nothing
damps the grid scale, so its stable dt lies well below what the a-priori CFL screen allows
(presets/gpu-quick.yaml and presets/reference.yaml quote what this probe found for them).
A DNS spun up for a few time units on a coarser grid than the preset's is a proxy for the
preset's snapshots, not the same field: the probe shows a margin, not a guarantee.
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from turbtl import TurbtlError
from turbtl.filters import sgs_fields
from turbtl.les import LES, filtered_forcing_hat, smagorinsky
from turbtl.solver import DNSSolver, FlowParams


def probe(Re: float, kf: int, beta: float, mu: float, n_dns: int, n_les: int, dt_dns: float, spinup: float,
          dts: list[float], les_time: float, seed: int = 2, log=print) -> list[dict]:
    p = FlowParams(Re=Re, kf=kf, beta=beta, mu=mu, n=n_dns, dt=dt_dns, name="probe")
    dns = DNSSolver(p, 1, seed=seed, check_every=100)
    t0 = time.perf_counter()
    dns.advance(int(round(spinup / dt_dns)))
    log(f"DNS {n_dns}^2 Re {Re:g} kf {kf} beta {beta:g} mu {mu:g} to t = {dns.t:.3g} in "
        f"{time.perf_counter() - t0:.0f} s, max CFL {dns.max_cfl:.3f}")
    _, omega, _ = sgs_fields(dns.omega.double(), n_les)
    fh = filtered_forcing_hat(kf, n_dns, n_les, "gaussian", 2.0)
    rows = []
    for dt in dts:
        q = FlowParams(Re=Re, kf=kf, beta=beta, mu=mu, n=n_les, dt=dt, name="probe")
        smag = smagorinsky(n_les, 2 * math.pi / n_les, 0.17, dtype=torch.float32)
        les = LES(q, omega.float(), [None, smag], ["none", "smagorinsky"], forcing_hat=fh, dtype=torch.float32,
                  cfl_max=math.inf, check_every=10)
        top = [0.0, 0.0]
        steps = int(round(les_time / dt))
        t1 = time.perf_counter()
        reached = None  # the time the LES without closure blew up (None: it ran through)
        for _ in range(-(-steps // 10)):  # whole checks of 10 steps, at least les_time
            try:
                les.advance(10)
            except TurbtlError:  # the member without closure went non-finite: the job would stop
                reached, top[0] = les.t, math.inf
                break
            u, _ = les.member_maxima()
            top = [max(a, x * dt / les.grid.dx) for a, x in zip(top, u)]
            if top[0] > 5:  # far past any stable step: count it as blown up
                reached = les.t
                break
        smag_ok = bool(les.alive[1]) and top[1] <= 5
        row = dict(dt=dt, les_time=les_time, stable=reached is None, blew_up_at=reached, smagorinsky_stable=smag_ok,
                   max_cfl_none=top[0], max_cfl_smagorinsky=top[1], seconds=time.perf_counter() - t1)
        rows.append(row)
        none = "ran through" if reached is None else f"BLEW UP at t = {reached:.3g}"
        log(f"les.dt {dt:g}, {les_time:g} time units: without closure {none} (max CFL {top[0]:.3g}); "
            f"Smagorinsky {'ran through' if smag_ok else 'blew up'} (max CFL {top[1]:.3g}); {row['seconds']:.0f} s")
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--Re", type=float, required=True)
    ap.add_argument("--kf", type=int, default=4)
    ap.add_argument("--beta", type=float, default=0.0)
    ap.add_argument("--mu", type=float, default=0.1)
    ap.add_argument("--n-dns", type=int, default=512)
    ap.add_argument("--n-les", type=int, default=128)
    ap.add_argument("--dt-dns", type=float, default=2e-4)
    ap.add_argument("--spinup", type=float, default=5.0, help="DNS time units before the LES starts")
    ap.add_argument("--dts", default="2.5e-3,1.25e-3,6.25e-4", help="LES time steps to try")
    ap.add_argument("--les-time", type=float, default=2.0)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    probe(a.Re, a.kf, a.beta, a.mu, a.n_dns, a.n_les, a.dt_dns, a.spinup, [float(x) for x in a.dts.split(",")],
          a.les_time)


if __name__ == "__main__":
    main()
