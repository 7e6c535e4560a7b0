"""Filtering benchmark: time per snapshot of sgs_fields vs the time of the FFTs it needs,
and vs a naive way (numpy, DNS Jacobian with 3/2 zero padding at full resolution).

    python benchmarks/bench_filter.py [--threads 1] [--write]

--write puts the results into the "## Filtering" section of benchmarks/README.md.
"""
from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
from pathlib import Path

import numpy as np
import torch

from turbtl.filters import filter_width, sgs_fields, transfer_function

sys.path.insert(0, str(Path(__file__).parent))
from bench_dns import interleaved_min, write_section  # noqa: E402


def ffts_of_sgs(om: torch.Tensor, n_les: int):
    """The transforms sgs_fields makes, on tensors of the same shapes and dtype (float64)."""
    B, N = om.shape[0], om.shape[-1]
    m = 3 * n_les // 2
    a4 = torch.zeros(4, B, N, N // 2 + 1, dtype=torch.complex128)
    l4 = torch.zeros(4, B, m, m // 2 + 1, dtype=torch.complex128)
    l3 = torch.zeros(3, B, n_les, n_les // 2 + 1, dtype=torch.complex128)
    lr = torch.zeros(B, m, m, dtype=torch.float64)

    def run():
        torch.fft.rfft2(om)  # omega_hat
        torch.fft.irfft2(a4, s=(N, N))  # u, v, omega_x, omega_y on the DNS grid
        torch.fft.rfft2(om)  # the DNS product
        torch.fft.irfft2(l4, s=(m, m))  # the 3/2-padded LES product
        torch.fft.rfft2(lr)
        torch.fft.irfft2(l3, s=(n_les, n_les))  # psi_bar, omega_bar, Pi back to the grid
    return run


def naive_numpy(om: np.ndarray, n_les: int, wf: float):
    """Naive: numpy, full-resolution DNS Jacobian with 3/2 zero padding (complex FFTs),
    Gaussian filter, truncation, LES Jacobian with 3/2 padding."""
    N = om.shape[-1]
    delta = filter_width(n_les, wf)

    def jac(w, n):
        m = 3 * n // 2
        k = np.fft.fftfreq(n, 1.0 / n)
        kx, ky = k[None, :], k[:, None]
        k2 = kx**2 + ky**2
        wh = np.fft.fft2(w)
        ph = np.where(k2 > 0, wh / np.where(k2 > 0, k2, 1), 0)

        def pad(fh):
            out = np.zeros(fh.shape[:-2] + (m, m), complex)
            h = n // 2
            idx = np.r_[0:h, m - h:m]
            src = np.r_[0:h, n - h:n]
            out[..., idx[:, None], idx[None, :]] = fh[..., src[:, None], src[None, :]]
            return out * (m / n) ** 2

        f = [np.fft.ifft2(pad(x)).real for x in (1j * ky * ph, -1j * kx * ph, 1j * kx * wh, 1j * ky * wh)]
        jh = np.fft.fft2(f[0] * f[2] + f[1] * f[3])
        h = n // 2
        idx = np.r_[0:h, m - h:m]
        src = np.r_[0:h, n - h:n]
        out = np.zeros(jh.shape[:-2] + (n, n), complex)
        out[..., src[:, None], src[None, :]] = jh[..., idx[:, None], idx[None, :]] * (n / m) ** 2
        return out

    k = np.fft.fftfreq(N, 1.0 / N)
    G = np.exp(-(k[None, :] ** 2 + k[:, None] ** 2) * delta**2 / 24)

    def coarse(fh):
        h = n_les // 2
        src = np.r_[0:h, N - h:N]
        out = fh[..., src[:, None], src[None, :]] * (n_les / N) ** 2
        out[..., h, :] = 0
        return out

    jb = coarse(G * jac(om, N))
    ob = coarse(G * np.fft.fft2(om))
    return np.fft.ifft2(jb).real - np.fft.ifft2(jac(np.fft.ifft2(ob).real, n_les)).real


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--write", action="store_true")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    lines = ["| DNS -> LES | batch | sgs_fields per snapshot (ms) | its FFTs (ms) | ratio | naive numpy (ms) | speed-up |",
             "|---|---|---|---|---|---|---|"]
    for N, n_les in ((128, 32), (256, 32)):
        B = 16
        om = torch.randn(B, N, N, dtype=torch.float32)
        om64 = om.double()
        omn = om64.numpy()
        r = interleaved_min({"sgs": lambda: sgs_fields(om, n_les, "gaussian", 2.0),
                             "fft": ffts_of_sgs(om64, n_les),
                             "naive": lambda: naive_numpy(omn, n_les, 2.0)}, repeats=5, inner=2)
        t = {k: v / B * 1e3 for k, v in r.items()}
        lines.append(f"| {N}^2 -> {n_les}^2 | {B} | {t['sgs']:.3f} | {t['fft']:.3f} | {t['sgs'] / t['fft']:.2f} "
                     f"| {t['naive']:.3f} | {t['naive'] / t['sgs']:.1f}x |")
    _ = transfer_function  # (documented filter definitions live in turbtl.filters)
    head = (f"{datetime.date.today()}, {platform.machine()} {os.cpu_count()}-core CPU (shared with other jobs), "
            f"torch {torch.__version__}, {a.threads} thread(s).  `python benchmarks/bench_filter.py --write`.  "
            "Gaussian filter, exact Pi, float64 arithmetic; minimum over interleaved repeats.  Naive = numpy "
            "complex FFTs with the DNS Jacobian computed with 3/2 zero padding at full resolution.")
    body = head + "\n\n" + "\n".join(lines)
    print(body)
    if a.write:
        write_section("## Filtering", body)


if __name__ == "__main__":
    main()
