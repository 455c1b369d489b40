import math

import pytest
import torch

from baselines import ROUNDS
from search.engine.model import SparseDropout, build_model, count_params, layer_table
from spaces import Arch


@pytest.mark.parametrize("name", list(ROUNDS))
def test_round_builds_to_its_exact_parameter_count(name):
    b = ROUNDS[name]
    assert count_params(b.candidate.arch) == b.params


@pytest.mark.parametrize("name", list(ROUNDS))
@pytest.mark.parametrize("sparse", [False, True])
def test_round_gives_finite_log_probabilities(name, sparse):
    model = build_model(ROUNDS[name].candidate.arch, sparse_dropout=sparse)
    x = torch.randn(5, 1, 28, 28)
    for mode in (model.train, model.eval):
        mode()
        out = model(x)
        assert out.shape == (5, 10)
        assert torch.isfinite(out).all()
        assert torch.allclose(out.exp().sum(1), torch.ones(5), atol=1e-5)


def test_topology_matches_the_notebooks():
    model = build_model(ROUNDS["round3"].candidate.arch)
    block = model.block1
    assert [type(m).__name__ for m in block] == ["Conv2d", "ReLU", "BatchNorm2d", "Dropout"]
    assert model.block1.conv.bias is None and model.transition.kernel_size == (1, 1)
    assert isinstance(model.pool, torch.nn.AvgPool2d) and model.pool.kernel_size == 6
    assert "block5" not in dict(model.named_children())
    assert "block5" in dict(build_model(ROUNDS["round1"].candidate.arch).named_children())


def test_avgpool6_on_an_8x8_map_reads_only_its_top_left_window():
    # Without the optional block the map before pooling is 8x8; AvgPool2d(6) must keep
    # the notebooks' quirk (average of the top-left 6x6), while "gap" averages all of it.
    model = build_model(ROUNDS["round3"].candidate.arch).eval()
    feats = {}
    model.block7.register_forward_hook(lambda m, i, o: feats.setdefault("x", o))
    model(torch.randn(2, 1, 28, 28))
    x = feats["x"]
    assert x.shape[-2:] == (8, 8)
    assert torch.allclose(model.pool(x).flatten(1), x[..., :6, :6].mean((-1, -2)), atol=1e-6)
    gap = build_model(Arch(8, 16, 8, 12, None, 14, 14, 0.01, pool="gap")).pool
    assert torch.allclose(gap(x).flatten(1), x.mean((-1, -2)), atol=1e-6)


def test_dropout_zero_leaves_the_layer_out():
    model = build_model(Arch(8, 16, 8, 12, None, 14, 14, dropout=0.0))
    assert not any(isinstance(m, (torch.nn.Dropout, SparseDropout)) for m in model.modules())


def test_layer_table_lists_layers_and_total():
    table = layer_table(build_model(ROUNDS["round2"].candidate.arch))
    assert "block1.conv (Conv2d)" in table and "[14, 1, 1]" in table
    assert table.strip().endswith("6,616")


@pytest.mark.parametrize("p", [0.01, 0.1, 0.3])
def test_sparse_dropout_drops_each_element_with_probability_p(p):
    torch.manual_seed(0)
    n = 400_000
    y = SparseDropout(p)(torch.ones(n))
    dropped = (y == 0).float().mean().item()
    # binomial standard error; 5 sigma keeps this test from flaking
    assert abs(dropped - p) < 5 * math.sqrt(p * (1 - p) / n)
    assert torch.allclose(y[y != 0], torch.full_like(y[y != 0], 1 / (1 - p)))


def test_sparse_dropout_masks_are_independent_between_calls_and_elements():
    torch.manual_seed(1)
    d = SparseDropout(0.2)
    a = d(torch.ones(200_000)) == 0
    b = d(torch.ones(200_000)) == 0
    both = (a & b).float().mean().item()
    assert abs(both - 0.04) < 0.003  # P(dropped twice) = p^2 when independent
    neighbours = (a[:-1] & a[1:]).float().mean().item()
    assert abs(neighbours - 0.04) < 0.003


def test_sparse_dropout_gradient_uses_the_forward_mask():
    torch.manual_seed(2)
    for fmt in (torch.contiguous_format, torch.channels_last):
        x = torch.randn(4, 6, 5, 5).contiguous(memory_format=fmt).requires_grad_()
        y = SparseDropout(0.3)(x)
        g = torch.randn_like(y)
        y.backward(g)
        kept = y != 0
        expected = torch.where(kept, g / 0.7, torch.zeros_like(g))
        assert torch.allclose(x.grad, expected, atol=1e-6)
        assert torch.allclose(y[kept], x.detach()[kept] / 0.7, atol=1e-6)


def test_sparse_dropout_is_identity_in_eval_mode():
    d = SparseDropout(0.5).eval()
    x = torch.randn(3, 4)
    assert torch.equal(d(x), x)
