"""One builder for every network: baselines and search candidates alike.

The topology is the notebooks' exactly, ReLU before BatchNorm included:

    step  layer                                          size
    1     block 1 -> c1                                  26x26
    2     block c1 -> c2                                 24x24
    3     transition 1x1 conv c2 -> t (no act/BN/drop)   24x24
    4     MaxPool2d(2, 2)                                12x12
    5     block t -> c4                                  10x10
    6     block c4 -> c5 (optional)                      8x8
    7     block -> c6                                    6x6 with step 6, 8x8 without
    8     block c6 -> c7, padding 1                      same as step 7
    9     AvgPool2d(6)  (or a true global average)       1x1
    10    1x1 conv c7 -> 10, flatten, log_softmax

Without step 6 the map is 8x8 and AvgPool2d(6) averages its top-left 6x6 window only:
that is what the notebooks did, and reproducing a round means reproducing it.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import nn

from spaces import Arch, Net


class SparseDropout(nn.Module):
    """Dropout with the same distribution as `nn.Dropout`, drawn cheaply when p is small.

    `nn.Dropout` draws one Bernoulli number per element, which on a CPU costs more than
    the convolutions of these networks. Here the dropped positions are drawn directly:
    M ~ Poisson(-n ln(1-p)) positions uniform over the n elements, with repeats. Each
    element's hit count is then an independent Poisson(-ln(1-p)) variable, so it is hit
    (dropped) with probability exactly p, independently of the others: the masks have
    nn.Dropout's distribution, from about p*n random numbers instead of n. Kept elements
    are scaled by 1/(1-p) as in nn.Dropout. Random numbers come from torch's global
    generators, so runs are as reproducible as with nn.Dropout (a different stream).
    """

    def __init__(self, p: float) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        n = x.numel()
        rate = torch.tensor(-math.log1p(-self.p) * n, dtype=torch.float64)
        m = int(torch.poisson(rate))  # drawn on the CPU: no device sync
        positions = torch.randint(0, n, (m,), device=x.device)
        return _DropPositions.apply(x, positions, 1.0 / (1.0 - self.p))

    def extra_repr(self) -> str:
        return f"p={self.p}"


class _DropPositions(torch.autograd.Function):
    """y = x * scale with the elements at `positions` (in memory order) set to zero."""

    @staticmethod
    def forward(ctx, x, positions, scale):
        fmt = _memory_format(x)
        y = (x * scale).contiguous(memory_format=fmt)
        _flat(y).index_fill_(0, positions, 0.0)
        ctx.save_for_backward(positions)
        ctx.scale, ctx.fmt = scale, fmt
        return y

    @staticmethod
    def backward(ctx, grad):
        (positions,) = ctx.saved_tensors
        grad_x = (grad * ctx.scale).contiguous(memory_format=ctx.fmt)
        _flat(grad_x).index_fill_(0, positions, 0.0)
        return grad_x, None, None


def _memory_format(x: torch.Tensor) -> torch.memory_format:
    if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
        return torch.channels_last
    return torch.contiguous_format


def _flat(t: torch.Tensor) -> torch.Tensor:
    """A 1-D view of a dense tensor's memory."""
    return t.as_strided((t.numel(),), (1,), t.storage_offset())


def block(cin: int, cout: int, dropout: float, padding: int = 0, sparse_dropout: bool = False,
          order: str = "relu-bn", bias: bool = False) -> nn.Sequential:
    """Conv3x3 -> ReLU -> BatchNorm (or BatchNorm -> ReLU) -> Dropout; dropout 0 leaves the layer out."""
    act = [("relu", nn.ReLU()), ("bn", nn.BatchNorm2d(cout))]
    layers = [("conv", nn.Conv2d(cin, cout, 3, padding=padding, bias=bias))]
    layers += act if order == "relu-bn" else act[::-1]
    if dropout > 0:
        layers.append(("drop", _dropout(dropout, sparse_dropout)))
    return nn.Sequential(OrderedDict(layers))


def _dropout(p: float, sparse: bool) -> nn.Module:
    return SparseDropout(p) if sparse else nn.Dropout(p)


def build_model(arch: Arch | Net, sparse_dropout: bool = False) -> nn.Sequential:
    """The network `arch` describes; output: log-probabilities of shape (batch, 10).

    `sparse_dropout` swaps nn.Dropout for `SparseDropout` (same distribution, cheaper
    on a CPU); the parameters and the state dict are the same either way.
    """
    if isinstance(arch, Net):
        return _build_net(arch, sparse_dropout)
    return _build_chain(arch, sparse_dropout)


def _build_net(net: Net, sparse_dropout: bool) -> nn.Sequential:
    """A network of stages (spaces.net): blocks, optional transition and max-pool per stage,
    then the head. The notebooks' chain as a Net gets the same layers in the same order
    as `_build_chain` gives it, under other names (stageN.blockM)."""
    conv_drop = net.dropout if net.drop == "conv" else 0.0
    stages: list[tuple[str, nn.Module]] = []
    cin = 1
    for i, stage in enumerate(net.stages, 1):
        layers: list[tuple[str, nn.Module]] = []
        for j, width in enumerate(stage.widths, 1):
            layers.append((f"block{j}", block(cin, width, conv_drop, padding=int(stage.pad),
                                              sparse_dropout=sparse_dropout, order=net.order, bias=net.bias)))
            cin = width
        if stage.transition:
            layers.append(("transition", nn.Conv2d(cin, stage.transition, 1, bias=net.bias)))
            cin = stage.transition
        if stage.pool:
            layers.append(("maxpool", nn.MaxPool2d(2, 2)))
        if net.drop == "stage" and net.dropout > 0 and i < len(net.stages):
            layers.append(("drop", _dropout(net.dropout, sparse_dropout)))
        stages.append((f"stage{i}", nn.Sequential(OrderedDict(layers))))
    stages += [
        ("pool", nn.AvgPool2d(6) if net.head == "avg6" else nn.AdaptiveAvgPool2d(1)),
        ("head", nn.Conv2d(cin, 10, 1, bias=net.bias)),
        ("flatten", nn.Flatten()),
        ("log_softmax", nn.LogSoftmax(dim=1)),
    ]
    model = nn.Sequential(OrderedDict(stages))
    if net.init == "xavier":  # the published design's `initialize_weights`; BatchNorm starts at 1 and 0 anyway
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
    return model


def _build_chain(arch: Arch, sparse_dropout: bool) -> nn.Sequential:
    """The notebooks' chain under the notebooks' layer names, which the weights stored by
    the first space's studies (v1-v4) are keyed by."""
    p, s = arch.dropout, sparse_dropout
    layers: list[tuple[str, nn.Module]] = [
        ("block1", block(1, arch.c1, p, sparse_dropout=s)),
        ("block2", block(arch.c1, arch.c2, p, sparse_dropout=s)),
        ("transition", nn.Conv2d(arch.c2, arch.t, 1, bias=False)),
        ("maxpool", nn.MaxPool2d(2, 2)),
        ("block4", block(arch.t, arch.c4, p, sparse_dropout=s)),
    ]
    width = arch.c4
    if arch.c5 is not None:
        layers.append(("block5", block(width, arch.c5, p, sparse_dropout=s)))
        width = arch.c5
    layers += [
        ("block6", block(width, arch.c6, p, sparse_dropout=s)),
        ("block7", block(arch.c6, arch.c7, p, padding=1, sparse_dropout=s)),
        ("pool", nn.AvgPool2d(6) if arch.pool == "avg6" else nn.AdaptiveAvgPool2d(1)),
        ("head", nn.Conv2d(arch.c7, 10, 1, bias=False)),
        ("flatten", nn.Flatten()),
        ("log_softmax", nn.LogSoftmax(dim=1)),
    ]
    return nn.Sequential(OrderedDict(layers))


def count_params(model_or_arch: nn.Module | Arch | Net) -> int:
    """Trainable parameters as torchsummary counts them (BN running stats are buffers)."""
    model = build_model(model_or_arch) if isinstance(model_or_arch, (Arch, Net)) else model_or_arch
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def layer_table(model: nn.Module, input_size: tuple[int, ...] = (1, 1, 28, 28)) -> str:
    """A torchsummary-style table: leaf layer, output shape, parameters."""
    rows: list[tuple[str, str, str]] = []
    hooks = []
    for name, module in model.named_modules():
        if len(list(module.children())) == 0:
            hooks.append(module.register_forward_hook(_row_hook(name, module, rows)))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        with torch.no_grad():
            model(torch.zeros(input_size, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    total = count_params(model)
    w = max(len(r[0]) for r in rows)
    lines = [f"{'layer':<{w}}  {'output shape':<18} {'params':>7}", "-" * (w + 28)]
    lines += [f"{n:<{w}}  {s:<18} {p:>7}" for n, s, p in rows]
    lines += ["-" * (w + 28), f"{'total parameters':<{w}}  {'':<18} {total:>7,}"]
    return "\n".join(lines)


def _row_hook(name: str, module: nn.Module, rows: list):
    def hook(_module, _inputs, output):
        params = sum(p.numel() for p in module.parameters(recurse=False))
        kind = type(module).__name__
        rows.append((f"{name} ({kind})", str(list(output.shape[1:])), f"{params:,}"))

    return hook
