"""Canonization: the traced equivalent computes what the served model does, and the served model is untouched."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import fx, nn

from explainers.models.handle import LocalModel
from explainers.propagation.errors import UnsupportedModel
from explainers.propagation.graph import canonize
from explainers.propagation.nodes import Kind
from tests.explainers.conftest import raw_for
from tests.explainers.propagation.conftest import ARCHS, PROPAGATION, BiasFree, explain, hooks_on

RESIDUAL_SUMS = {"resnet18": 8, "resnet50": 16, "vgg16": 0, "densenet121": 0}


def _calls(graph: fx.GraphModule, *targets: object) -> int:
    return sum(1 for n in graph.graph.nodes if n.op in ("call_function", "call_method") and n.target in targets)


@pytest.mark.parametrize("arch", ARCHS)
def test_the_canonized_graph_computes_the_served_models_outputs(arch_registry, arch):
    model = arch_registry.get(arch)
    assert isinstance(model, LocalModel)
    x = model.prepare(raw_for(model, 1)).x
    with torch.inference_mode():
        served = model.module(x)
        canon = canonize(model.module)
        ours = canon.forward(x)
    torch.testing.assert_close(ours, served, rtol=1e-4, atol=1e-4 * float(served.abs().max()))
    summary = canon.summary()
    assert summary["sums"] == RESIDUAL_SUMS[arch]
    assert _calls(canon.graph, torch.nn.functional.relu, "relu", "add", __import__("operator").add) == 0
    bns = [s for s in canon.steps if s.kind is Kind.BATCHNORM]
    if arch.startswith("resnet"):
        assert not bns and summary["batchnorms_folded"] == sum(
            isinstance(m, nn.BatchNorm2d) for m in model.module.modules())
    if arch == "densenet121":  # the pre-activation BatchNorms follow a concatenation: they stay, as Pass steps
        assert bns and summary["batchnorms_folded"] > 0 and summary["functions_made_modules"] >= 2


def test_the_served_model_is_bit_identical_after_every_propagation_method(arch_registry):
    model = arch_registry.get("resnet18")
    assert isinstance(model, LocalModel)
    raw = raw_for(model, 2)
    x = model.prepare(raw).x
    params = dict(model.module.named_parameters())
    state = {k: v.clone() for k, v in model.module.state_dict().items()}
    with torch.inference_mode():
        before = model.module(x)
    for name in PROPAGATION:
        if name.startswith("pattern"):
            continue  # ResNet-18 here has no patterns (the job test computes them)
        explain(name, model, raw)
        assert hooks_on(model.module) == 0 and hooks_on(canonize(model.module).graph) == 0, name
    with torch.inference_mode():
        after = model.module(x)
    assert torch.equal(before, after)
    for key, value in model.module.state_dict().items():
        assert torch.equal(value, state[key]), key
    for name, p in model.module.named_parameters():
        assert p is params[name] and p.grad is None and not p.requires_grad


def test_a_model_is_traced_once():
    module = BiasFree()
    assert canonize(module) is canonize(module)


class Gated(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)
        return self.head((h * torch.sigmoid(h)).mean((2, 3)))  # a product of two computed tensors


class Recurrent(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 3, batch_first=True)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.lstm(x)
        return self.head(out[:, -1])


class Branching(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:  # data-dependent control flow: not traceable
            return self.head(x)
        return -self.head(x)


@pytest.mark.parametrize("module,layer,kind", [(Gated(), "mul", "mul"), (Recurrent(), "lstm", "LSTM"),
                                               (Branching(), None, None)])
def test_what_the_engine_cannot_handle_is_refused_by_name(module, layer, kind):
    with pytest.raises(UnsupportedModel) as err:
        canonize(module)
    if layer is None:
        assert "cannot trace" in err.value.message
    else:
        assert err.value.details["layer"] == layer and err.value.details["type"] == kind
        assert layer in err.value.message
    assert hooks_on(module) == 0


def test_functional_and_residual_steps_become_modules_that_take_rules():
    canon = canonize(BiasFree())
    kinds = [s.kind for s in canon.steps]
    assert kinds.count(Kind.SUM) == 1 and canon.summary()["batchnorms_folded"] == 1
    assert sum(1 for s in canon.steps if s.kind is Kind.ACTIVATION) == 4  # three calls of relu, one F.relu
    assert canon.first is not None and canon.first.target == "conv1"
    assert canon.last is not None and canon.last.target == "fc2"
    x = torch.randn(2, 3, 8, 8)
    np.testing.assert_allclose(canon.forward(x).numpy(), BiasFree()(x).numpy(), rtol=1e-5, atol=1e-6)
