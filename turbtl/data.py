"""Filtered data sets: loading, member splits, the small TL subset, normalisation, symmetries.

File format (docs/DESIGN.md): ``results/filtered/{system}.nc`` holds ``psi``, ``omega``,
``pi`` (member, time, y, x) float32 on the LES grid and ``split(member)`` in
{"train", "val", "test"}.  Samples are ordered member-major: sample ``s`` is
``(member index s // n_time, time index s % n_time)`` of the selected members.

Network input ``X`` is (S, 2, n, n) = (psi, omega); target ``Y`` is (S, 1, n, n) = Pi.

Symmetries of the periodic square (used for data augmentation of the base training):
with ``J(psi, omega) = psi_y omega_x - psi_x omega_y``,

- a rotation by 90 degrees maps a solution to a solution with psi, omega, Pi rotated
  (J is invariant under proper rotations);
- a reflection maps a solution to a solution only with psi, omega **and Pi changing sign**
  (J changes sign under an improper map, so J(-psi', -omega') = -J'  follows).

On the grid, ``torch.rot90`` / ``torch.flip`` are these maps composed with a translation by
whole grid cells, which is itself a symmetry of the periodic problem.  The Kolmogorov forcing
``cos(kf x) + cos(kf y)`` is invariant under rotation and reflection up to a translation by
pi/kf (the sign flip turns F into -F, a shifted copy of F).  A beta-plane (``beta != 0``)
breaks the rotations and the x-reflection; only the y-reflection (with the sign flip)
survives, so :func:`symmetry_group` returns just that for such flows.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from . import TurbtlError
from .arrays import as_float32_tensor
from .io import check_finite, open_netcdf

__all__ = ["FilteredData", "load_xy", "split_members", "small_subset", "small_sets", "draw_indices",
           "flow_attrs", "Normaliser",
           "SYMMETRIES", "symmetry_group", "apply_symmetry", "augment_batch"]

SPLITS = ("train", "val", "test")


def _open(path):
    path = Path(path)
    if not path.exists():
        raise TurbtlError(f"filtered data file {path} does not exist; fix: run the filter stage "
                          f"(snakemake {path}) first")
    return open_netcdf(path)


class FilteredData:
    """One filtered file, opened ONCE: attributes, member splits and the fields in memory.

    A job that needs several views (the flow's attributes, the small sets of every seed, the
    test members) builds one of these instead of reopening the file for each.  Fields are
    checked for non-finite values only where they are selected (:meth:`xy`), so a job never
    fails on members it does not read.
    """

    def __init__(self, path):
        self.path = Path(path)
        with _open(self.path) as ds:
            self.attrs = dict(ds.attrs)
            self.members = [int(m) for m in ds["member"].values]
            self.split = [str(s) for s in ds["split"].values]
            self._fields = {v: ds[v].values.astype(np.float32) for v in ("psi", "omega", "pi")}
        self._by_split = _by_split(self.path, self.members, self.split)

    @property
    def name(self) -> str:
        return str(self.attrs.get("name", self.path.stem))

    def split_members(self) -> dict[str, list[int]]:
        """Member coordinate values per split: ``{"train": [...], "val": [...], "test": [...]}``."""
        return {k: list(v) for k, v in self._by_split.items()}

    def xy(self, split: str | None = None, members=None) -> tuple[np.ndarray, np.ndarray]:
        """``(X, Y)`` of the selected members, member-major (see :func:`load_xy`)."""
        if split is not None and members is not None:
            raise ValueError("give split or members, not both")
        if split is not None:
            if split not in SPLITS:
                raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
            members = self.split_members()[split]
            if not members:
                raise TurbtlError(f"{self.path} has no {split!r} members; fix: give the system more "
                                  f"members or adjust val_members/test_members in config.yaml")
        members = self.members if members is None else [int(m) for m in members]
        idx = [self.members.index(m) for m in members]
        psi, omega, pi = (self._fields[v][idx] for v in ("psi", "omega", "pi"))
        for name, a in (("psi", psi), ("omega", omega), ("pi", pi)):
            check_finite(a, self.path, name, members)
        m, t, ny, nx = psi.shape
        X = np.stack([psi, omega], axis=2).reshape(m * t, 2, ny, nx)
        Y = pi.reshape(m * t, 1, ny, nx)
        return np.ascontiguousarray(X), np.ascontiguousarray(Y)

    def fields(self, split: str) -> dict[str, np.ndarray]:
        """psi, omega and pi of one split's members, (members, time, y, x), checked finite."""
        members = self.split_members()[split]
        idx = [self.members.index(m) for m in members]
        out = {v: self._fields[v][idx] for v in ("psi", "omega", "pi")}
        for name, a in out.items():
            check_finite(a, self.path, name, members)
        return out

    def small_sets(self, n_small: int, seeds) -> list[tuple[np.ndarray, np.ndarray]]:
        """:func:`small_subset` for several seeds (the train members only)."""
        X, Y = self.xy("train")
        n_small = int(n_small)
        _check_small(self.path, n_small, len(X))
        out = []
        for seed in seeds:
            idx = draw_indices(len(X), n_small, seed)
            out.append((X[idx].copy(), Y[idx].copy()))
        return out


def split_members(path) -> dict[str, list[int]]:
    """Member coordinate values per split: ``{"train": [...], "val": [...], "test": [...]}``."""
    with _open(path) as ds:
        return _by_split(path, [int(m) for m in ds["member"].values], [str(s) for s in ds["split"].values])


def _by_split(path, members, split) -> dict[str, list[int]]:
    """Group member coordinate values by their split; an unknown split names the file."""
    out = {s: [] for s in SPLITS}
    for m, s in zip(members, split):
        if s not in out:
            raise TurbtlError(f"{path}: member {m} has split {s!r}, expected one of {SPLITS}; "
                              "fix: regenerate the filtered file")
        out[s].append(m)
    return out


def flow_attrs(path) -> dict:
    """The global attributes of a filtered file (the flow's parameters)."""
    with _open(path) as ds:
        return dict(ds.attrs)


def load_xy(path, split: str | None = None, members=None) -> tuple[np.ndarray, np.ndarray]:
    """Load ``(X, Y)``: X (S, 2, n, n) = (psi, omega), Y (S, 1, n, n) = Pi, float32, member-major.

    ``split`` selects the members whose ``split`` variable equals it; ``members`` (coordinate
    values) selects explicitly; both None loads every member.  Non-finite values in the
    selected members stop with :func:`check_finite`'s message.
    """
    return FilteredData(path).xy(split, members)


def draw_indices(n_total: int, n_small: int, seed) -> np.ndarray:
    """Sorted indices of a random draw of ``n_small`` of ``n_total`` samples, no repeats.

    ``seed`` is an int or a sequence of ints (``numpy.random.default_rng`` entropy), e.g.
    ``(transfer.subset_seed, tl_seed)`` for the paired draws of the TL seeds.
    """
    seed = [int(v) for v in seed] if isinstance(seed, (tuple, list)) else int(seed)
    return np.sort(np.random.default_rng(seed).choice(int(n_total), size=int(n_small), replace=False))


def _check_small(path, n_small: int, n_train: int) -> None:
    if n_small < 1:
        raise TurbtlError(f"small target set size is {n_small}; fix: raise transfer.fraction in config.yaml")
    if n_small > n_train:
        raise TurbtlError(
            f"{path}: the small TL set needs {n_small} snapshots but the train members hold only "
            f"{n_train}; fix: lower transfer.fraction, or give this target more members or "
            f"snapshots_per_member in config.yaml")


def small_subset(path, n_small: int, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """A random subset of ``n_small`` snapshots of the TRAIN members of ``path``.

    The subset depends only on (file, n_small, seed); ``seed`` is an int or a tuple of ints
    (:func:`draw_indices`).  It never touches the val or test members.  Indices are sorted
    (member-major order kept).
    """
    return small_sets(path, n_small, [seed])[0]


def small_sets(path, n_small: int, seeds) -> list[tuple[np.ndarray, np.ndarray]]:
    """:func:`small_subset` for several seeds, reading the file once."""
    return FilteredData(path).small_sets(n_small, seeds)


class Normaliser:
    """Per-channel standardisation of inputs (psi, omega) and of the output Pi.

    ``in_mean``, ``in_std``: (2,) numpy float64; ``out_mean``, ``out_std``: (1,).
    ``.x``, ``.y`` normalise, ``.y_inv`` undoes ``.y``; all take numpy arrays or tensors
    (N, C, n, n) and return float32 tensors (on the input tensor's device).
    """

    def __init__(self, in_mean, in_std, out_mean, out_std):
        self.in_mean = np.asarray(in_mean, dtype=np.float64).reshape(-1)
        self.in_std = np.asarray(in_std, dtype=np.float64).reshape(-1)
        self.out_mean = np.asarray(out_mean, dtype=np.float64).reshape(-1)
        self.out_std = np.asarray(out_std, dtype=np.float64).reshape(-1)
        if np.any(self.in_std <= 0) or np.any(self.out_std <= 0):
            raise TurbtlError("normaliser: a channel has zero variance in the training data; "
                              "fix: check the filtered data (constant field?)")

    @classmethod
    def fit(cls, X, Y) -> "Normaliser":
        X = np.asarray(X.detach().cpu() if isinstance(X, torch.Tensor) else X, dtype=np.float64)
        Y = np.asarray(Y.detach().cpu() if isinstance(Y, torch.Tensor) else Y, dtype=np.float64)
        ax = (0, 2, 3)
        return cls(X.mean(axis=ax), X.std(axis=ax), Y.mean(axis=ax), Y.std(axis=ax))

    @staticmethod
    def _shape(v, t):
        return torch.as_tensor(v, dtype=torch.float32, device=t.device).view(1, -1, 1, 1)

    def x(self, X) -> torch.Tensor:
        t = as_float32_tensor(X)
        return (t - self._shape(self.in_mean, t)) / self._shape(self.in_std, t)

    def y(self, Y) -> torch.Tensor:
        t = as_float32_tensor(Y)
        return (t - self._shape(self.out_mean, t)) / self._shape(self.out_std, t)

    def y_inv(self, y) -> torch.Tensor:
        t = as_float32_tensor(y)
        return t * self._shape(self.out_std, t) + self._shape(self.out_mean, t)

    def state_dict(self) -> dict:
        return {"in_mean": [float(v) for v in self.in_mean], "in_std": [float(v) for v in self.in_std],
                "out_mean": [float(v) for v in self.out_mean], "out_std": [float(v) for v in self.out_std]}

    @classmethod
    def from_state_dict(cls, d: dict) -> "Normaliser":
        return cls(d["in_mean"], d["in_std"], d["out_mean"], d["out_std"])

    def __repr__(self):
        return f"Normaliser({self.state_dict()})"


# ---------------------------------------------------------------------------- symmetries
# An element of the dihedral group D4 of the square: (k, flip) = first flip x (if flip),
# then rotate by k * 90 degrees.  Fields change sign exactly when flip is True.
SYMMETRIES: tuple[tuple[int, bool], ...] = tuple((k, f) for f in (False, True) for k in range(4))


def symmetry_group(beta: float = 0.0) -> tuple[tuple[int, bool], ...]:
    """The D4 elements that map solutions to solutions for a flow with this ``beta``.

    beta == 0: all 8.  beta != 0: the identity and the reflection y -> -y (with sign flip),
    i.e. flip x then rotate by 180 degrees.
    """
    if float(beta) == 0.0:
        return SYMMETRIES
    return ((0, False), (2, True))


def apply_symmetry(f: torch.Tensor, k: int, flip: bool) -> torch.Tensor:
    """Apply D4 element (k, flip) to fields ``f`` (..., y, x) of psi, omega or Pi (sign included)."""
    if flip:
        f = -torch.flip(f, dims=(-1,))
    if k % 4:
        f = torch.rot90(f, k % 4, dims=(-2, -1))
    return f


def augment_batch(x: torch.Tensor, y: torch.Tensor, generator: torch.Generator,
                  group=SYMMETRIES) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply an independent random element of ``group`` to each sample of (x, y).

    The sign flip is about zero, so augment PHYSICAL fields and normalise afterwards
    (``training.fit`` does), not normalised ones.
    """
    if len(group) == 1:
        return x, y
    choice = torch.randint(len(group), (x.shape[0],), generator=generator)
    xo, yo = torch.empty_like(x), torch.empty_like(y)
    for g, (k, flip) in enumerate(group):
        sel = (choice == g).nonzero().flatten().to(x.device)
        if sel.numel():
            xo[sel] = apply_symmetry(x[sel], k, flip)
            yo[sel] = apply_symmetry(y[sel], k, flip)
    return xo, yo
