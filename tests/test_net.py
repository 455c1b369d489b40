"""Networks as stages: the closed-form parameter count, the chain and the published design as stages."""

import random

import pytest
import torch

from baselines import ROUNDS
from baselines.published import DESIGN_3762
from search.engine.model import build_model, count_params
from spaces import Net, Stage


@pytest.mark.parametrize("name", list(ROUNDS))
def test_a_round_as_stages_is_the_same_network_with_the_same_weights(name):
    arch = ROUNDS[name].candidate.arch
    net = arch.to_net()
    assert net.params == count_params(net) == ROUNDS[name].params
    torch.manual_seed(3)
    chain = build_model(arch).eval()
    torch.manual_seed(3)
    staged = build_model(net).eval()
    assert [p.shape for p in chain.parameters()] == [p.shape for p in staged.parameters()]
    x = torch.randn(4, 1, 28, 28)
    assert torch.equal(chain(x), staged(x))


def test_the_published_design_builds_as_published():
    net = DESIGN_3762.arch
    assert net.params == count_params(net) == 3_762
    model = build_model(net)
    kinds = [type(m).__name__ for m in model.stage1.block1]
    assert kinds == ["Conv2d", "BatchNorm2d", "ReLU"]  # BatchNorm before ReLU, no dropout per conv
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(convs) == 10 and all(c.bias is not None for c in convs)  # nine 3x3 and the head
    assert [type(m).__name__ for m in model.modules()].count("MaxPool2d") == 2
    assert hasattr(model.stage1, "drop") and hasattr(model.stage2, "drop") and not hasattr(model.stage3, "drop")
    assert net.sizes() == (14, 7, 7) and isinstance(model.pool, torch.nn.AdaptiveAvgPool2d)
    # its `initialize_weights`: Xavier-uniform weights (bound sqrt(6 / (fan_in + fan_out))), zero biases
    torch.manual_seed(0)
    conv = build_model(net).stage2.block1.conv
    assert torch.equal(conv.bias, torch.zeros(8))
    bound = (6 / (4 * 9 + 8 * 9)) ** 0.5
    assert conv.weight.abs().max() <= bound and conv.weight.abs().max() > 0.9 * bound


def random_net(rng: random.Random) -> Net:
    stages = tuple(Stage(tuple(rng.choice((2, 4, 6, 8, 12)) for _ in range(rng.randint(1, 3))), pad=rng.random() < 0.6,
                         transition=rng.choice((None, 4, 10)), pool=rng.random() < 0.5)
                   for _ in range(rng.randint(1, 4)))
    return Net(stages, dropout=rng.choice((0.0, 0.05)), order=rng.choice(("relu-bn", "bn-relu")),
               head=rng.choice(("gap", "avg6")), drop=rng.choice(("conv", "stage")), bias=rng.random() < 0.5,
               init=rng.choice(("default", "xavier")))


def test_the_closed_form_count_is_the_built_models_count_and_every_net_runs():
    rng, built = random.Random(0), 0
    while built < 60:
        try:
            net = random_net(rng)
        except ValueError:  # the map shrank to nothing: refused, as tested below
            continue
        model = build_model(net)
        assert net.params == count_params(model), net.describe()
        out = model.train()(torch.randn(3, 1, 28, 28))
        assert out.shape == (3, 10) and torch.isfinite(out).all(), net.describe()  # ten classes, whatever the head
        built += 1


def test_a_net_whose_map_shrinks_to_nothing_or_under_its_head_is_refused():
    with pytest.raises(ValueError, match="shrinks to nothing in stage 2"):
        Net((Stage((8,) * 5, pool=True), Stage((8,) * 5)))  # 28 -> 18 -> 9 -> -1
    with pytest.raises(ValueError, match="avg6 head needs a map of 6x6 to 11x11"):
        Net((Stage((4,), pad=True, pool=True),) * 3, head="avg6")  # 28 -> 14 -> 7 -> 3
    with pytest.raises(ValueError, match="avg6 head needs a map of 6x6 to 11x11"):
        Net((Stage((4,), pad=True, pool=True), Stage((4,), pad=True)), head="avg6")  # 14: AvgPool2d(6) gives 2x2
    with pytest.raises(ValueError, match="order"):
        Net((Stage((4,)),), order="relu")
