"""Unsupervised kernel classes: k-means on the kernels' z-scored, zero-padded spectra.

The rule-based labels of :mod:`turbtl.diagnostics` (low/high/band-pass, Gabor) need two
thresholds; the follow-up study of the brief (Darman et al. 2025) classifies kernels instead
by clustering their spectra, with no threshold: each kernel ``w`` (k x k) is zero-padded to
``PAD`` x ``PAD``, ``|fft2|`` is taken over the full layout (``PAD**2`` numbers, the symmetric
half included, so every mode weighs the same), and that spectrum is z-scored (its own mean
and standard deviation over the modes: the cluster sees the shape, not the gain; a dead
kernel's spectrum is all zeros).  k-means with ``CLUSTERS`` = 8 groups them.

Choices, fixed here and not tuned to any flow:

- ``PAD`` = 16: the transfer function of a 5x5 kernel is a trigonometric polynomial of
  degree 2 per axis, which 16 samples per axis resolve, for every LES grid (the rule-based
  labels pad to the LES grid instead, where their thresholds are defined).
- k-means: k-means++ seeding then Lloyd's iterations until the centres stop moving (``TOL``),
  ``RESTARTS`` = 4 seeded restarts, the lowest within-cluster sum of squares kept;
  deterministic for a given input.
- The clusters are numbered by their centroid's spectral centre of mass
  ``sum |k| c+(k) / sum c+(k)`` (``c+`` the centroid minus its minimum), lowest first: cluster
  0 is the most low-pass shape, cluster 7 the most high-pass, whatever the order k-means found.
- Kernels of other networks (after TL) are assigned to the nearest centroid of the base
  network's clusters (:func:`assign`), so "the kernels moved from cluster a to b" is defined.
"""
from __future__ import annotations

import numpy as np

from .diagnostics import kernel_spectra

__all__ = ["CLUSTERS", "PAD", "RESTARTS", "features", "kmeans", "KernelClusters", "fit", "assign", "counts", "purity"]

CLUSTERS = 8
PAD = 16
RESTARTS = 4
TOL = 1e-4
_MAX_ITER = 300


def features(weights, pad: int = PAD) -> np.ndarray:
    """(N, pad*pad) z-scored |fft2| of the zero-padded kernels of ``weights``: one array (or a
    list of arrays) of shape (..., k, k), flattened in order."""
    ws = weights if isinstance(weights, (list, tuple)) else [weights]
    spec = np.concatenate([kernel_spectra(w, pad).reshape(-1, pad * pad) for w in ws])
    mean = spec.mean(axis=1, keepdims=True)
    std = spec.std(axis=1, keepdims=True)
    return np.where(std > 1e-12 * np.maximum(mean, 1e-300), (spec - mean) / np.where(std > 0, std, 1.0), 0.0)


def _plus_plus(x: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    centres = [x[rng.integers(len(x))]]
    d2 = ((x - centres[0]) ** 2).sum(axis=1)
    for _ in range(1, k):
        total = d2.sum()
        i = rng.choice(len(x), p=d2 / total) if total > 0 else rng.integers(len(x))
        centres.append(x[i])
        d2 = np.minimum(d2, ((x - x[i]) ** 2).sum(axis=1))
    return np.array(centres)


def _nearest(x: np.ndarray, centres: np.ndarray, xx: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Index of the nearest centre and the squared distance to it; ``xx``: the rows' squared
    norms if known (they are the same at every iteration)."""
    xx = np.einsum("ij,ij->i", x, x) if xx is None else xx
    d2 = xx[:, None] - 2 * x @ centres.T + (centres**2).sum(axis=1)[None, :]
    lab = np.argmin(d2, axis=1)
    return lab, np.maximum(d2[np.arange(len(x)), lab], 0.0)


def kmeans(x: np.ndarray, k: int, *, seed: int = 0, restarts: int = RESTARTS) -> tuple[np.ndarray, np.ndarray, float]:
    """Lloyd's k-means with k-means++ seeding: (centres (k, d), labels (N,), inertia), the best
    of ``restarts`` seeded runs.  Lloyd's iterations stop when no point changes cluster or the
    centres moved by less than ``TOL`` times the data's mean variance per feature (summed
    squared shift); the labels returned are then those of the nearest final centre.  An
    emptied cluster is re-seeded at the point farthest from its centre.  Needs at least ``k``
    points."""
    x = np.asarray(x, dtype=np.float64)
    if len(x) < k:
        raise ValueError(f"k-means with {k} clusters needs at least {k} kernels, got {len(x)}")
    xx = np.einsum("ij,ij->i", x, x)
    tol = TOL * float(np.var(x, axis=0).mean())
    best = None
    for r in range(restarts):
        rng = np.random.default_rng([seed, r])
        centres = _plus_plus(x, k, rng)
        lab = None
        for _ in range(_MAX_ITER):
            new, d2 = _nearest(x, centres, xx)
            if lab is not None and np.array_equal(new, lab):
                break
            lab, previous = new, centres.copy()
            onehot = np.zeros((k, len(x)))
            onehot[lab, np.arange(len(x))] = 1.0
            size = onehot.sum(axis=1)
            sums = onehot @ x  # the members' sums, one matrix product
            for c in range(k):
                if size[c] > 0:
                    centres[c] = sums[c] / size[c]
                else:  # re-seed an empty cluster at the worst-fitted point
                    far = int(np.argmax(d2))
                    centres[c], d2[far] = x[far], 0.0
            if ((centres - previous) ** 2).sum() <= tol:
                break
        lab, d2 = _nearest(x, centres, xx)
        inertia = float(d2.sum())
        if best is None or inertia < best[2] - 1e-12 * max(inertia, 1.0):
            best = (centres.copy(), lab, inertia)
    return best


class KernelClusters:
    """The fitted clusters: ``centroids`` (CLUSTERS, PAD, PAD) in z-units, full fft layout;
    ``labels`` of the fitted kernels; ``inertia``; ``pad``."""

    def __init__(self, centroids: np.ndarray, labels: np.ndarray, inertia: float, pad: int):
        self.centroids, self.labels, self.inertia, self.pad = centroids, labels, float(inertia), int(pad)

    def counts(self, labels=None) -> np.ndarray:
        return counts(self.labels if labels is None else labels, len(self.centroids))


def counts(labels, clusters: int = CLUSTERS) -> np.ndarray:
    """Kernels per cluster (``clusters`` entries) of cluster ``labels`` of any shape."""
    return np.bincount(np.asarray(labels).ravel(), minlength=clusters)


def _spectral_centre(centroids: np.ndarray, pad: int) -> np.ndarray:
    k = np.fft.fftfreq(pad, d=1.0 / pad)
    kk = np.sqrt(k[None, :] ** 2 + k[:, None] ** 2).ravel()
    c = centroids.reshape(len(centroids), -1)
    pos = c - c.min(axis=1, keepdims=True)
    return (pos * kk).sum(axis=1) / np.maximum(pos.sum(axis=1), 1e-300)


def fit(weights, *, clusters: int = CLUSTERS, pad: int = PAD, seed: int = 0) -> KernelClusters:
    """Cluster every kernel of ``weights`` (see :func:`features`); clusters renumbered by their
    centroid's spectral centre of mass (module docstring)."""
    x = features(weights, pad)
    centres, lab, inertia = kmeans(x, clusters, seed=seed)
    order = np.argsort(_spectral_centre(centres, pad), kind="stable")
    rank = np.empty_like(order)
    rank[order] = np.arange(len(order))
    return KernelClusters(centres[order].reshape(clusters, pad, pad), rank[lab], inertia, pad)


def assign(weights, centroids: np.ndarray) -> np.ndarray:
    """The nearest of ``centroids`` (C, PAD, PAD) for every kernel of ``weights``, flattened."""
    c = np.asarray(centroids, dtype=np.float64)
    return _nearest(features(weights, c.shape[-1]), c.reshape(len(c), -1))[0]


def purity(clusters: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of kernels whose rule-based label is their cluster's most common one (1: every
    cluster holds one class; the share of the commonest class when the clusters ignore them)."""
    clusters, labels = np.asarray(clusters).ravel(), np.asarray(labels).ravel()
    if len(clusters) == 0:
        return float("nan")
    hits = sum(np.bincount(labels[clusters == c]).max() for c in np.unique(clusters))
    return float(hits) / len(clusters)
