"""Training throughput of SGSNet vs the machine's own conv2d throughput, and a sizing check.

    python benchmarks/bench_train.py [--threads 2] [--steps 30]
    python benchmarks/bench_train.py --sizing     # default-config base training + one TL layer job

Throughput: training steps (forward, MSE, backward, Adam) at batch 16 on 32^2 inputs of
the default net (11 layers, 32 channels, 5x5).  FLOPs per training sample are counted as
3x the forward convolutions' FLOPs (forward + input gradient + weight gradient), less the
input gradient of layer 1 (not needed).  The reference is a bare Conv2d(32, 32, 5) forward +
backward (input and weight gradients) at the same batch and grid, timed in the same run;
training is reported as a fraction of that conv throughput.

Sizing (--sizing): synthetic data of the default shapes (240 train, 30 val, 30 test
snapshots of 2x32x32), ``train_base`` with 40 epochs at batch 16, then ``run_layer_job`` for
layer 1 (the slowest: longest suffix) and layer 11 with 24 small-set snapshots, 50 epochs,
3 seeds, batch 8.  Wall-clock times of the real code paths, and the process CPU time: on a
machine shared with other jobs, CPU seconds / threads estimates the wall time on idle cores.
"""
from __future__ import annotations

import argparse
import platform
import sys
import tempfile
import time
from pathlib import Path

import torch

from turbtl.network import NetConfig, SGSNet


def conv_flops(cfg: NetConfig, n: int) -> float:
    """Forward FLOPs (2 per multiply-add) of one sample."""
    widths = [cfg.in_channels] + [cfg.channels] * (cfg.depth - 1) + [cfg.out_channels]
    return sum(2.0 * widths[i] * widths[i + 1] * cfg.kernel_size**2 * n * n for i in range(cfg.depth))


def train_flops(cfg: NetConfig, n: int) -> float:
    first = 2.0 * cfg.in_channels * cfg.channels * cfg.kernel_size**2 * n * n
    return 3 * conv_flops(cfg, n) - first


def bench_throughput(threads: int, steps: int, batch: int = 16, n: int = 32, depth: int = 11,
                     channels: int = 32):
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    cfg = NetConfig(depth=depth, channels=channels)
    model = SGSNet(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(batch, 2, n, n)
    y = torch.randn(batch, 1, n, n)

    def step():
        loss = torch.mean((model(x) - y) ** 2)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    t_train = (time.perf_counter() - t0) / steps

    conv = torch.nn.Conv2d(channels, channels, cfg.kernel_size, padding=cfg.kernel_size // 2,
                           padding_mode=cfg.padding)
    xc = torch.randn(batch, channels, n, n, requires_grad=True)

    def cstep():
        out = conv(xc)
        out.sum().backward()
        xc.grad = None
        conv.zero_grad(set_to_none=True)

    for _ in range(3):
        cstep()
    reps = steps * depth
    t0 = time.perf_counter()
    for _ in range(reps):
        cstep()
    t_conv = (time.perf_counter() - t0) / reps
    conv_fl = 3 * 2.0 * channels * channels * cfg.kernel_size**2 * n * n * batch
    tr_fl = train_flops(cfg, n) * batch
    res = {"samples_per_s": batch / t_train, "train_gflops": tr_fl / t_train / 1e9,
           "conv_gflops": conv_fl / t_conv / 1e9, "step_ms": 1e3 * t_train, "conv_ms": 1e3 * t_conv}
    res["fraction"] = res["train_gflops"] / res["conv_gflops"]
    print(f"torch {torch.__version__}, {platform.machine()}, threads {torch.get_num_threads()}; "
          f"net {depth} x {channels} ch, {n}^2, batch {batch}")
    print(f"training: {res['step_ms']:.1f} ms/step, {res['samples_per_s']:.1f} samples/s, "
          f"{res['train_gflops']:.2f} GFLOP/s ({train_flops(cfg, n) / 1e6:.1f} MFLOP per sample)")
    print(f"bare conv2d {channels}->{channels} fwd+bwd: {res['conv_ms']:.2f} ms, {res['conv_gflops']:.2f} GFLOP/s")
    print(f"training achieves {100 * res['fraction']:.0f}% of the bare conv throughput")
    return res


def sizing(threads: int):
    torch.set_num_threads(threads)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from synthetic import write_filtered

    from turbtl.training import train_base
    from turbtl.transfer import run_layer_job

    net = {"depth": 11, "channels": 32, "kernel_size": 5, "padding": "circular"}
    train = {"epochs": 40, "batch_size": 16, "lr": 1e-3, "augment": False, "seed": 0, "amp": "none"}
    tl = {"layers": "all", "seeds": 3, "fraction": 0.1, "epochs": 50, "batch_size": 8, "lr": 1e-3}
    with tempfile.TemporaryDirectory() as d:
        d = Path(d)
        # 10 members x 30 snapshots: 8 train (240), 1 val, 1 test
        base = write_filtered(d / "base.nc", members=10, times=30, n=32, name="base")
        target = write_filtered(d / "target.nc", members=4, times=30, n=32, seed=5, slope=2.0,
                                name="target")
        t0, c0 = time.perf_counter(), time.process_time()
        m = train_base(base, d / "base.pt", d / "m.json", d / "h.csv", network_cfg=net,
                       training_cfg=train, device="cpu")
        t_base, c_base = time.perf_counter() - t0, time.process_time() - c0
        print(f"base training: {t_base:.1f} s wall, {c_base:.1f} s CPU (240 snapshots, 40 epochs, batch 16), "
              f"test cc {m['test_cc']:.3f}, nmse {m['test_nmse']:.3f}")
        out = {"base_s": t_base, "base_cpu_s": c_base}
        for L in (1, 11):
            t0, c0 = time.perf_counter(), time.process_time()
            df = run_layer_job(d / "base.pt", target, L, d / f"l{L}.csv", d / f"l{L}.pt",
                               transfer_cfg=tl, n_small=24, device="cpu")
            out[f"layer{L}_s"] = time.perf_counter() - t0
            out[f"layer{L}_cpu_s"] = time.process_time() - c0
            print(f"TL layer {L} job: {out[f'layer{L}_s']:.1f} s wall, {out[f'layer{L}_cpu_s']:.1f} s CPU "
                  f"(24 snapshots, 50 epochs, 3 seeds), "
                  f"nmse {df['nmse'].mean():.3f}")
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--sizing", action="store_true")
    a = ap.parse_args(argv)
    if a.sizing:
        return sizing(a.threads)
    return bench_throughput(a.threads, a.steps)


if __name__ == "__main__":
    main()
