"""Per-layer TL sweep: cached prefix + frozen weights vs the naive way.

Three ways to re-train layer L of an SGSNet on the small target set, timed in ONE run at the
shapes of the config when it was written (11 layers, 32 channels, 32x32, batch 8, small set of 24; today's
config.yaml has 16 channels and 18: pass --channels 16 --small 18):

- cached: ``turbtl.transfer.retrain_layer`` (prefix 1..L-1 computed once, frozen weights,
  each step runs layers L..depth; only layer L gets weight gradients);
- frozen: full forward every step, frozen weights (``retrain_layer(cached=False)``);
- naive:  full forward and full backward every step, every weight gets a gradient, only
  layer L is stepped (what a plain training loop with a one-layer optimiser does).

    python benchmarks/bench_transfer.py [--epochs 5] [--threads 2]
    python benchmarks/bench_transfer.py --channels 16 --small 18 --sizes 4 9 54   # the size study's cost

With ``--sizes`` it times instead the cached sweep at each small-set size of the size study
(``transfer.fractions``) beside the ``--small`` one, in one run, and prints each size's time
over the main size's against the ratio of the sizes (the README's "about N / main").

The sweep over all layers is timed per way; the ratio naive / cached is printed.  The
three ways run interleaved, ``--repeats`` times per layer, and the minimum per layer and way
is kept, so that load from other processes on a shared machine distorts the ratio less.
"""
from __future__ import annotations

import argparse
import copy
import math
import platform
import time

import torch

from turbtl.data import Normaliser
from turbtl.network import NetConfig, SGSNet
from turbtl.transfer import retrain_layer


def naive(base, layer, x, y, *, epochs, batch_size, lr, seed):
    model = copy.deepcopy(base)
    opt = torch.optim.Adam(model.layer_parameters(layer), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = perm[i:i + batch_size]
            loss = torch.mean((model(x[idx]) - y[idx]) ** 2)
            model.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    return model


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--depth", type=int, default=11)
    ap.add_argument("--channels", type=int, default=32)
    ap.add_argument("--n", type=int, default=32)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--small", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="*", default=None,
                    help="time the cached sweep at these small-set sizes against --small (the size study)")
    a = ap.parse_args(argv)
    if a.sizes:
        return sizes(a)
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base = SGSNet(NetConfig(depth=a.depth, channels=a.channels))
    X = torch.randn(a.small, 2, a.n, a.n)
    Y = torch.randn(a.small, 1, a.n, a.n)
    norm = Normaliser([0, 0], [1, 1], [0], [1])
    kw = dict(epochs=a.epochs, batch_size=a.batch, lr=1e-3, seed=0)
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}; net {a.depth} layers x {a.channels} ch, {a.n}^2, "
          f"batch {a.batch}, small set {a.small}, {a.epochs} epochs per layer")
    # warm-up
    retrain_layer(base, 1, X, Y, norm, device="cpu", **dict(kw, epochs=1))
    times = {"cached": {}, "frozen": {}, "naive": {}}
    ways = {
        "cached": lambda L: retrain_layer(base, L, X, Y, norm, device="cpu", cached=True, **kw),
        "frozen": lambda L: retrain_layer(base, L, X, Y, norm, device="cpu", cached=False, **kw),
        "naive": lambda L: naive(base, L, norm.x(X), norm.y(Y), **kw),
    }
    for L in range(1, a.depth + 1):
        for _ in range(a.repeats):
            for way, fn in ways.items():
                t0 = time.perf_counter()
                fn(L)
                dt = time.perf_counter() - t0
                times[way][L] = min(times[way].get(L, float("inf")), dt)
        print(f"layer {L:2d}: " + "  ".join(f"{w} {times[w][L]:6.2f} s" for w in ways), flush=True)
    tot = {k: sum(v.values()) for k, v in times.items()}
    print(f"sweep ({a.depth} layers, {a.epochs} epochs each, min of {a.repeats}): cached {tot['cached']:.1f} s, "
          f"frozen {tot['frozen']:.1f} s, naive {tot['naive']:.1f} s")
    print(f"speed-up naive/cached = {tot['naive'] / tot['cached']:.2f}x, "
          f"frozen/cached = {tot['frozen'] / tot['cached']:.2f}x")
    return tot


def sizes(a):
    """The cached sweep (every layer, ``--epochs`` each) at each size, the sizes interleaved,
    the minimum of ``--repeats`` per size and layer; time over the main size's beside N / main."""
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    base = SGSNet(NetConfig(depth=a.depth, channels=a.channels))
    ns = sorted({a.small, *a.sizes})
    data = {n: (torch.randn(n, 2, a.n, a.n), torch.randn(n, 1, a.n, a.n)) for n in ns}
    norm = Normaliser([0, 0], [1, 1], [0], [1])
    kw = dict(epochs=a.epochs, batch_size=a.batch, lr=1e-3, seed=0, device="cpu")
    print(f"torch {torch.__version__}, {platform.processor() or platform.machine()}, threads {torch.get_num_threads()}; "
          f"net {a.depth} layers x {a.channels} ch, {a.n}^2, batch {a.batch}, {a.epochs} epochs per layer; sizes {ns}, "
          f"main {a.small}")
    retrain_layer(base, 1, *data[ns[0]], norm, **dict(kw, epochs=1))  # warm-up
    t = {n: {} for n in ns}
    for L in range(1, a.depth + 1):
        for _ in range(a.repeats):
            for n in ns:
                t0 = time.perf_counter()
                retrain_layer(base, L, *data[n], norm, **kw)
                t[n][L] = min(t[n].get(L, float("inf")), time.perf_counter() - t0)
    tot = {n: sum(v.values()) for n, v in t.items()}
    for n in ns:
        print(f"size {n:4d}: sweep {tot[n]:7.2f} s, time / main's {tot[n] / tot[a.small]:5.2f}x, "
              f"size / main {n / a.small:5.2f}x, steps / main's "
              f"{math.ceil(n / a.batch) / math.ceil(a.small / a.batch):5.2f}x")
    return tot


if __name__ == "__main__":
    main()
