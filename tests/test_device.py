"""Device handling.  The CUDA tests run wherever torch sees a GPU (CI has none: skipped
there) and check that each stage gives the CPU's result up to float tolerance."""
import numpy as np
import pytest
import torch

from turbtl import TurbtlError
from turbtl.runtime import resolve_device

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


def test_resolve_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(TurbtlError, match="fix: set 'device: auto' or 'device: cpu'"):
            resolve_device("cuda")


@cuda
def test_dns_cuda_matches_cpu():
    from turbtl.solver import DNSSolver, FlowParams

    p = FlowParams.from_config(dict(Re=1000, kf=4, beta=20.0, mu=0.1, n_dns=64, n_les=16, dt=2e-3), "gpu")
    runs = []
    for dev in ("cpu", "cuda"):
        s = DNSSolver(p, 3, device=dev, dtype=torch.float64, seed=5)
        s.advance(200)
        runs.append(s.omega.cpu().numpy())
    np.testing.assert_allclose(runs[1], runs[0], rtol=1e-9, atol=1e-9 * np.abs(runs[0]).max())


@cuda
def test_sgs_cuda_matches_cpu():
    from turbtl.filters import sgs_fields

    om = torch.randn(4, 64, 64, dtype=torch.float64)
    cpu = sgs_fields(om, 16)
    gpu = sgs_fields(om.cuda(), 16)
    for a, b in zip(cpu, gpu):
        np.testing.assert_allclose(b.cpu().numpy(), a.numpy(), rtol=1e-10, atol=1e-12)


@cuda
def test_network_and_retraining_on_cuda_match_cpu():
    from turbtl.data import Normaliser
    from turbtl.network import SGSNet
    from turbtl.transfer import retrain_layer

    torch.manual_seed(0)
    net = SGSNet(depth=4, channels=8)
    x = np.random.default_rng(0).standard_normal((6, 2, 16, 16)).astype(np.float32)
    y = np.random.default_rng(1).standard_normal((6, 1, 16, 16)).astype(np.float32)
    norm = Normaliser.fit(x, y)
    with torch.no_grad():
        a = net(torch.from_numpy(x))
        b = net.cuda()(torch.from_numpy(x).cuda()).cpu()
    torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)
    kw = dict(epochs=2, batch_size=3, lr=1e-3, seed=0)
    m_cpu, _ = retrain_layer(net.cpu(), 2, x, y, norm, device="cpu", **kw)
    m_gpu, _ = retrain_layer(net.cpu(), 2, x, y, norm, device="cuda", **kw)
    torch.testing.assert_close(m_gpu.layer(2).weight.cpu(), m_cpu.layer(2).weight, rtol=1e-3, atol=1e-4)
    torch.testing.assert_close(m_gpu.layer(3).weight.cpu(), net.layer(3).weight, rtol=0, atol=0)
