"""Small synthetic filtered-data files in the format of docs/DESIGN.md (results/filtered/{system}.nc).

Fields: psi is a random band-limited field (|k| < n/3, spectrum ~ k^-slope), omega = -lap psi,
and Pi is an SGS-like term computed on the same grid:
``Pi = G*J(psi, omega) - J(G*psi, G*omega)`` with a Gaussian filter G, J = u omega_x + v omega_y,
u = psi_y, v = -psi_x (kind="sgs"), or a linear local map of omega (kind="linear", easy to learn).
"""
from __future__ import annotations

import numpy as np
import xarray as xr


def wavenumbers(n):
    k = np.fft.fftfreq(n, d=1.0 / n)
    return k[None, :], k[:, None]  # kx along axis -1, ky along axis -2


def ddx(f):
    kx, _ = wavenumbers(f.shape[-1])
    return np.real(np.fft.ifft2(1j * kx * np.fft.fft2(f)))


def ddy(f):
    _, ky = wavenumbers(f.shape[-1])
    return np.real(np.fft.ifft2(1j * ky * np.fft.fft2(f)))


def laplacian(f):
    kx, ky = wavenumbers(f.shape[-1])
    return np.real(np.fft.ifft2(-(kx**2 + ky**2) * np.fft.fft2(f)))


def gaussian_filter(f, delta):
    kx, ky = wavenumbers(f.shape[-1])
    return np.real(np.fft.ifft2(np.exp(-(kx**2 + ky**2) * delta**2 / 24) * np.fft.fft2(f)))


def jacobian(psi, omega):
    """J(psi, omega) = u omega_x + v omega_y with u = psi_y, v = -psi_x."""
    return ddy(psi) * ddx(omega) - ddx(psi) * ddy(omega)


def sgs(psi, omega, delta):
    g = lambda f: gaussian_filter(f, delta)  # noqa: E731
    return g(jacobian(psi, omega)) - jacobian(g(psi), g(omega))


def random_psi(rng, shape, n, slope=3.0, kmin=1.0):
    kx, ky = wavenumbers(n)
    kk = np.sqrt(kx**2 + ky**2)
    amp = np.where((np.abs(kx) < n / 3) & (np.abs(ky) < n / 3) & (kk >= kmin),
                   np.maximum(kk, 1.0) ** (-slope / 2 - 1), 0.0)
    noise = rng.standard_normal(shape + (n, n))
    return np.real(np.fft.ifft2(np.fft.fft2(noise) * amp))


def make_fields(members=4, times=6, n=16, seed=0, kind="sgs", slope=3.0):
    rng = np.random.default_rng(seed)
    psi = random_psi(rng, (members, times), n, slope)
    psi /= psi.std()
    omega = -laplacian(psi)
    if kind == "sgs":
        pi = sgs(psi, omega, delta=2 * 2 * np.pi / n)
    elif kind == "linear":
        pi = 0.5 * omega + 0.3 * np.roll(omega, 1, axis=-1) - 0.2 * laplacian(omega) / n
    else:
        raise ValueError(kind)
    return psi.astype(np.float32), omega.astype(np.float32), pi.astype(np.float32)


def write_filtered(path, members=4, times=6, n=16, val_members=1, test_members=1, seed=0,
                   kind="sgs", name="synthetic", beta=0.0, slope=3.0):
    psi, omega, pi = make_fields(members, times, n, seed, kind, slope)
    split = ["train"] * (members - val_members - test_members) + ["val"] * val_members \
        + ["test"] * test_members
    x = np.arange(n) * 2 * np.pi / n
    dims = ("member", "time", "y", "x")
    ds = xr.Dataset(
        {"psi": (dims, psi, {"long_name": "filtered streamfunction", "units": "1"}),
         "omega": (dims, omega, {"long_name": "filtered vorticity", "units": "1"}),
         "pi": (dims, pi, {"long_name": "SGS term", "units": "1"}),
         "split": (("member",), np.array(split, dtype=object), {"long_name": "data split"})},
        coords={"member": np.arange(members), "time": np.arange(times, dtype=float), "x": x, "y": x},
        attrs={"name": name, "beta": float(beta), "n_les": n, "filter_kind": "gaussian"},
    )
    ds.to_netcdf(path, engine="netcdf4")
    return path
