"""Every fast path against the plain path: same maths, or the same distribution."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from baselines import ROUNDS
from search.config import Recipe
from search.engine.model import build_model
from search.engine.train import train

CPU = torch.device("cpu")
ROUND3 = ROUNDS["round3"].candidate
NO_DROPOUT = dataclasses.replace(ROUND3, arch=dataclasses.replace(ROUND3.arch, dropout=0.0))
# round3 whose lr does not drop inside a short run (its step 8 compresses to 2 of 3 epochs)
STEADY = dataclasses.replace(ROUND3, lr_step=15)


def test_without_dropout_sparse_and_native_models_train_identically(synthetic):
    a = train(NO_DROPOUT, Recipe(epochs=2, sparse_dropout=True), synthetic.train, {"t": synthetic.test}, CPU)
    b = train(NO_DROPOUT, Recipe(epochs=2, sparse_dropout=False), synthetic.train, {"t": synthetic.test}, CPU)
    assert [e.evals for e in a.history] == [e.evals for e in b.history]


def test_sparse_and_native_dropout_learn_alike(synthetic):
    # Same distribution, different random streams: both must learn the digits.
    for sparse in (True, False):
        r = train(STEADY, Recipe(epochs=3, batch_size=32, sparse_dropout=sparse), synthetic.train,
                  {"t": synthetic.test}, CPU)
        assert r.history[-1].evals["t"].acc > 90.0


def test_bf16_autocast_stays_close_to_fp32(synthetic):
    torch.manual_seed(0)
    model = build_model(ROUND3.arch).eval()
    x = torch.randn(16, 1, 28, 28)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = model(x).float()
    assert torch.allclose(low.exp(), ref.exp(), atol=0.05)
    r = train(STEADY, Recipe(epochs=3, batch_size=32, bf16=True), synthetic.train, {"t": synthetic.test}, CPU)
    assert r.history[-1].evals["t"].acc > 90.0


def test_compiled_model_matches_eager_forward_and_backward():
    torch.manual_seed(0)
    eager = build_model(NO_DROPOUT.arch)
    compiled_net = build_model(NO_DROPOUT.arch)
    compiled_net.load_state_dict(eager.state_dict())
    compiled = torch.compile(compiled_net)
    x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
    for net in (eager, compiled):
        F.nll_loss(net(x), y).backward()
    assert torch.allclose(compiled(x), eager(x), atol=1e-5)
    for (name, p), q in zip(eager.named_parameters(), compiled_net.parameters()):
        assert torch.allclose(p.grad, q.grad, atol=1e-5), name


def test_larger_batches_change_the_step_count_and_scale_the_lr(synthetic):
    r = train(ROUND3, Recipe(epochs=1, batch_size=128), synthetic.train, {}, CPU)
    assert r.steps == 4 and r.history[0].lr == pytest.approx(0.2)


def test_determinism_on_cuda_is_set_only_inside_a_run_and_only_when_asked():
    from search.engine.train import cuda_determinism

    cudnn = torch.backends.cudnn
    before = (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled())
    with cuda_determinism(torch.device("cuda"), deterministic=True):
        assert not cudnn.benchmark and cudnn.deterministic and torch.are_deterministic_algorithms_enabled()
    assert (cudnn.benchmark, cudnn.deterministic, torch.are_deterministic_algorithms_enabled()) == before
    with cuda_determinism(torch.device("cuda"), deterministic=False):
        assert cudnn.benchmark and not torch.are_deterministic_algorithms_enabled()  # speed
    with cuda_determinism(CPU, deterministic=True):
        assert (cudnn.benchmark, cudnn.deterministic) == before[:2]  # the CPU is left alone


def test_compile_resets_dynamo_for_every_new_architecture(synthetic, monkeypatch):
    calls = []
    monkeypatch.setattr(torch._dynamo, "reset", lambda: calls.append("reset"))
    monkeypatch.setattr(torch, "compile", lambda model, mode=None: calls.append("compile") or model)
    for _ in range(2):
        train(ROUND3, Recipe(epochs=1, batch_size=64, compile=True), synthetic.train, {}, CPU)
    assert calls == ["reset", "compile", "reset", "compile"]


def test_the_device_decides_the_dropout_kernel_in_one_place():
    assert Recipe().sparse_dropout_on("cpu") and not Recipe().sparse_dropout_on("cuda")
    assert not Recipe(sparse_dropout=False).sparse_dropout_on("cpu")  # --dense-dropout
