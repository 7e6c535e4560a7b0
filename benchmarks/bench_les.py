"""A-posteriori LES: one batched step against its parts, measured in ONE run.

The default a-posteriori batch of one target: 32^2 LES grid, 2 starts, closures = no
closure, Smagorinsky, dynamic Smagorinsky, dynamic Leith and 14 networks (zero shot, 11 TL layers, fine-tune-all, full target;
11 layers, 16 channels, 5x5 kernels).  Timed, interleaved ``--repeats`` times, minimum kept:

- step: one ``LES.step`` (tendency + AB2/CN update), the network closures run together
  (``turbtl.les.GroupedClosure``: one normalisation for all their members, the default);
- apart: the same step with each network closure on its own (``group_networks=False``), as the
  pipeline ran before: step / apart is what running them together saves, bit for bit;
- cnn:  the forward passes of every network on its members, one closure call each;
- batch: ONE network on all the networks' members at once, the same convolutions' FLOPs in one
  call (the floor that batching the networks could reach);
- grouped: the networks as one grouped convolution a layer (``groups`` = networks), the way to
  batch different networks: measured slower than ``cnn`` on the CPU, so the pipeline does not use it;
- fft:  the LES's own transforms (the 3/2-padded Jacobian's 4 inverse + 1 forward FFT, and
  the inverse FFT of psi, omega, u, v that feeds the closures);
- phys: the three physics closures (Smagorinsky, dynamic Smagorinsky, dynamic Leith) alone.

    python benchmarks/bench_les.py [--threads 1] [--device cpu|cuda] [--json out.json]

Prints step / (cnn + fft + phys) (the overhead of the batch bookkeeping), cnn / step (the
share of the networks) and phys / step.  On CUDA every timing synchronises the device.
"""
from __future__ import annotations

import argparse
import json
import platform
import time

import torch

from turbtl.data import Normaliser
from turbtl.equation import FlowParams
from turbtl.filters import jacobian_les_hat
from turbtl.les import LES, dynamic, network_closure, smagorinsky
from turbtl.network import NetConfig, SGSNet


def _grouped(nets) -> torch.nn.Module:
    """The networks as one: every layer a grouped convolution (groups = networks), the networks'
    kernels side by side; input (batch, networks x 2, n, n)."""
    G, convs = len(nets), []
    with torch.no_grad():
        for i, c in enumerate(nets[0].layers):
            g = torch.nn.Conv2d(G * c.in_channels, G * c.out_channels, c.kernel_size, padding=c.padding,
                                padding_mode=c.padding_mode, groups=G)
            g.weight.copy_(torch.cat([m.layers[i].weight for m in nets]))
            g.bias.copy_(torch.cat([m.layers[i].bias for m in nets]))
            convs += [g, torch.nn.ReLU()] if i < len(nets[0].layers) - 1 else [g]
    return torch.nn.Sequential(*convs)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--starts", type=int, default=2)
    ap.add_argument("--networks", type=int, default=14)
    ap.add_argument("--channels", type=int, default=16)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)
    dev = torch.device(a.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    norm = Normaliser([0, 0], [1, 1], [0], [1])
    nets = [SGSNet(NetConfig(depth=11, channels=a.channels)).to(dev).eval() for _ in range(a.networks)]
    dx = 2 * 3.141592653589793 / a.n
    phys = [smagorinsky(a.n, dx, device=dev), dynamic("smagorinsky", a.n, 2 * dx, device=dev),
            dynamic("leith", a.n, 2 * dx, device=dev)]
    fns = [None, *phys]
    fns += [network_closure(m, norm) for m in nets]
    p = FlowParams(Re=1000.0, kf=4, beta=0.0, mu=0.1, n=a.n, dt=5e-3, name="bench")
    om0 = torch.randn(a.starts, a.n, a.n)
    les = LES(p, om0, fns, [str(i) for i in range(len(fns))], forcing_hat=None, device=dev, dtype=torch.float32,
              cfl_max=1e9)
    les_apart = LES(p, om0, fns, [str(i) for i in range(len(fns))], forcing_hat=None, device=dev, dtype=torch.float32,
                    cfl_max=1e9, group_networks=False)
    grouped_net = _grouped(nets).to(dev).eval()
    x_all = torch.randn(a.starts * a.networks, 2, a.n, a.n, device=dev)
    x_grouped = torch.randn(a.starts, 2 * a.networks, a.n, a.n, device=dev)
    g, S = les.grid, a.starts
    psi = torch.randn(S, a.n, a.n, device=dev)

    def step():
        les.step()

    def apart():
        les_apart.step()

    def batch():
        with torch.inference_mode():
            nets[0](x_all)

    def grouped():
        with torch.inference_mode():
            grouped_net(x_grouped)

    def cnn():
        for f in fns[1 + len(phys):]:
            f(psi, psi)

    def fft():
        oh = les.omega_hat
        uh, vh = g.velocity_hat(oh)
        g.irfft(torch.stack([oh, oh, uh, vh]))
        jacobian_les_hat(oh * g.inv_lap, oh)

    def physics():
        for f in phys:
            f(psi, psi)

    ways = {"step": step, "apart": apart, "cnn": cnn, "batch": batch, "grouped": grouped, "fft": fft, "phys": physics}
    best = {k: float("inf") for k in ways}
    for fn in ways.values():  # warm-up
        fn()
    for _ in range(a.repeats):
        for k, fn in ways.items():
            sync()
            t0 = time.perf_counter()
            fn()
            sync()
            best[k] = min(best[k], time.perf_counter() - t0)
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else (platform.processor() or platform.machine())
    members = les.members
    print(f"torch {torch.__version__} on {a.device} ({name}), threads {torch.get_num_threads()}; LES {a.n}^2, "
          f"{len(fns)} closures x {S} starts = {members} members, {a.networks} networks of {a.channels} channels")
    for k, v in best.items():
        print(f"  {k:5s} {1e3 * v:8.3f} ms")
    r = {"device": a.device, "card": name, "n": a.n, "members": members, **{f"{k}_ms": 1e3 * v for k, v in best.items()},
         "step_over_parts": best["step"] / (best["cnn"] + best["fft"] + best["phys"]),
         "cnn_share": best["cnn"] / best["step"], "phys_share": best["phys"] / best["step"]}
    r |= {"step_over_apart": best["step"] / best["apart"], "batch_over_cnn": best["batch"] / best["cnn"],
          "grouped_over_cnn": best["grouped"] / best["cnn"]}
    print(f"step / (cnn + fft + phys) = {r['step_over_parts']:.2f}; cnn / step = {r['cnn_share']:.2f}; "
          f"phys / step = {r['phys_share']:.2f}; step / apart = {r['step_over_apart']:.2f}; "
          f"batch / cnn = {r['batch_over_cnn']:.2f}; grouped / cnn = {r['grouped_over_cnn']:.2f}; "
          f"6 time units at dt 5e-3 = {1200 * best['step']:.1f} s")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(r, f, indent=1)
    return r


if __name__ == "__main__":
    main()
