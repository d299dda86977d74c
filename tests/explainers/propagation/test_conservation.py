"""Conservation on bias-free networks: LRP with epsilon -> 0 and z-plus hand the explained output down intact.

Layer by layer (every rule's input relevance sums to its output relevance) and end to end (the input
relevance sums to the explained logit), within 1e-4 relative.
"""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from explainers.propagation.composites import COMPOSITES, Composite, RuleSettings
from explainers.propagation.engine import Recorder, one_hot, propagate
from explainers.propagation.graph import canonize
from explainers.propagation.rules import Rule
from tests.explainers.propagation.conftest import BiasFree

TOLERANCE = 1e-4


def bias_free_resnet18() -> nn.Module:
    """A random ResNet-18 whose BatchNorms shift by nothing (zero mean and bias) and whose head has no bias."""
    torch.manual_seed(3)
    model = torchvision.models.resnet18(num_classes=5)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.bias.zero_()
                m.running_mean.zero_()
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
        model.fc.bias.zero_()
    return model.eval().requires_grad_(False)


def rules_for(module: nn.Module, composite: str) -> tuple[object, dict[str, Rule]]:
    canon = canonize(module)
    rules = Composite.named(COMPOSITES[composite], RuleSettings(epsilon=1e-9, stabilizer=1e-12)).assign(canon)
    return canon, rules


NETWORKS = {"bias-free-net": (BiasFree, (1, 3, 8, 8)), "bias-free-resnet18": (bias_free_resnet18, (1, 3, 64, 64))}


@pytest.mark.parametrize("network", list(NETWORKS))
@pytest.mark.parametrize("composite", ["epsilon", "z_plus", "epsilon_plus_flat"])
def test_relevance_is_conserved_layer_by_layer_and_end_to_end(network, composite):
    build, shape = NETWORKS[network]
    module = build()
    canon, rules = rules_for(module, composite)
    x = torch.randn(shape, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        logits = module(x)
    target = int(logits.argmax())
    recorder = Recorder()
    relevance, outputs = propagate(canon, rules, x,  # type: ignore[arg-type]
                                   lambda out: one_hot(out, target, out[:, target]), recorder=recorder)
    explained = float(outputs[0, target])
    assert abs(explained) > 1e-3
    assert float(relevance.double().sum()) == pytest.approx(explained, rel=TOLERANCE)
    assert len(recorder.records) >= len(rules)
    for record in recorder.records:
        expected = pytest.approx(record.relevance_out, rel=TOLERANCE, abs=TOLERANCE * abs(explained))
        assert record.relevance_in == expected, record


def test_biases_absorb_relevance_where_there_are_some():
    """The check above can fail: with biases, epsilon-LRP does not conserve."""
    torch.manual_seed(0)
    module = nn.Sequential(nn.Linear(5, 6), nn.ReLU(), nn.Linear(6, 3)).eval().requires_grad_(False)
    with torch.no_grad():
        for layer in (module[0], module[2]):
            layer.bias.fill_(0.7)
    canon, rules = rules_for(module, "epsilon")
    x = torch.randn(1, 5)
    relevance, outputs = propagate(canon, rules, x, lambda out: one_hot(out, 0, out[:, 0]))  # type: ignore[arg-type]
    assert float(relevance.sum()) != pytest.approx(float(outputs[0, 0]), rel=1e-2)
