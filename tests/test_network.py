"""SGSNet: shapes, layer count and numbering, ReLU placement, padding behaviour, forward_range."""
import pytest
import torch

from turbtl.network import NetConfig, SGSNet


@pytest.fixture(autouse=True)
def _threads():
    torch.set_num_threads(1)


def net(**kw):
    torch.manual_seed(0)
    kw.setdefault("depth", 5)
    kw.setdefault("channels", 6)
    return SGSNet(NetConfig(**kw))


def test_shapes_and_layer_count():
    m = net(depth=7, channels=8)
    assert m.depth == 7 and len(list(m.layers)) == 7
    x = torch.randn(3, 2, 16, 16)
    assert m(x).shape == (3, 1, 16, 16)
    assert m.layer(1).in_channels == 2 and m.layer(1).out_channels == 8
    assert m.layer(7).in_channels == 8 and m.layer(7).out_channels == 1
    assert all(m.layer(i).kernel_size == (5, 5) for i in range(1, 8))
    assert all(m.layer(i).stride == (1, 1) for i in range(1, 8))
    with pytest.raises(IndexError):
        m.layer(0)
    with pytest.raises(IndexError):
        m.layer(8)
    # only convolutions: no pooling or normalisation layers
    assert all(isinstance(mod, (SGSNet, torch.nn.ModuleList, torch.nn.Conv2d)) for mod in m.modules())


def test_relu_after_all_but_last_layer():
    m = net()
    x = torch.randn(4, 2, 16, 16)
    acts = m.activations(x)
    assert len(acts) == m.depth
    for i, (pre, post) in enumerate(acts[:-1]):
        assert torch.equal(post, torch.relu(pre)), f"layer {i + 1} must be followed by ReLU"
        assert (pre < 0).any()
    pre, post = acts[-1]
    assert torch.equal(pre, post)  # last layer linear
    assert torch.allclose(post, m(x))
    with torch.no_grad():
        m.layer(m.depth).bias.fill_(-100.0)
    assert (m(x) < 0).all()  # no ReLU clips the output


def test_forward_range_composes():
    m = net(depth=6)
    x = torch.randn(2, 2, 16, 16)
    full = m(x)
    for L in range(1, m.depth + 1):
        h = m.forward_range(x, 1, L - 1)
        assert torch.allclose(m.forward_range(h, L, m.depth), full, atol=1e-6)
    assert torch.equal(m.forward_range(x, 3, 2), x)


def test_circular_padding_is_shift_equivariant():
    m = net(padding="circular")
    x = torch.randn(2, 2, 16, 16)
    for sy, sx in [(3, 0), (0, 5), (7, 11)]:
        shifted = m(torch.roll(x, (sy, sx), dims=(-2, -1)))
        assert torch.allclose(shifted, torch.roll(m(x), (sy, sx), dims=(-2, -1)), atol=1e-5)


def test_zero_padding_is_not_shift_equivariant_at_the_edges():
    m = net(padding="zeros", depth=3)
    m2 = net(padding="circular", depth=3)
    m2.load_state_dict(m.state_dict())
    x = torch.randn(2, 2, 16, 16)
    shifted = m(torch.roll(x, (3, 5), dims=(-2, -1)))
    assert not torch.allclose(shifted, torch.roll(m(x), (3, 5), dims=(-2, -1)), atol=1e-3)
    # away from the edges (receptive field: depth * 2 cells) both paddings agree
    r = m.depth * 2
    assert 16 > 2 * r
    assert torch.allclose(m(x)[..., r:-r, r:-r], m2(x)[..., r:-r, r:-r], atol=1e-5)
    assert not torch.allclose(m(x), m2(x), atol=1e-3)


def test_config_validation():
    with pytest.raises(ValueError):
        NetConfig(depth=1)
    with pytest.raises(ValueError):
        NetConfig(kernel_size=4)
    with pytest.raises(ValueError):
        NetConfig(padding="reflect")
    assert NetConfig(**NetConfig(channels=3).to_dict()) == NetConfig(channels=3)
