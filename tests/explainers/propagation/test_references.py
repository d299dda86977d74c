"""LRP against Zennit and Captum, DeepLIFT against Captum, on the same model and input.

Zennit's composites with its canonizers (BatchNorm merged, ResNet blocks with an explicit sum) do the
same arithmetic as ours: the maps are allclose. Captum's LRP does too for the epsilon rule; its gamma
and alpha1-beta0 rules split neither inputs nor outputs by sign, which is the same arithmetic on a
bias-free network of non-negative inputs. Captum's DeepLift hooks modules: where every nonlinearity is a
module called once, the maps are allclose. (On networks with stacked max poolings, such as shapes-cnn,
Captum's DeepLift is not complete: its convergence delta was 0.83 of a score difference of 5.4 there, and
0.03 of 0.008 on a two-pooling toy net from a constant baseline; ours is complete, see test_deeplift.py.)
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum import attr as ca
from captum.attr._utils import lrp_rules
from torch import nn

from explainers.models.handle import LocalModel
from tests.explainers.conftest import raw_for
from tests.explainers.propagation.conftest import explain


def close(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-3) -> None:
    scale = float(np.abs(ref).max()) or 1.0
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=rtol * scale)
    assert np.corrcoef(ours.ravel(), ref.ravel())[0, 1] >= 0.999


def per_pixel(relevance: torch.Tensor) -> np.ndarray:
    return relevance.detach()[0].sum(0).numpy()


ZENNIT = ["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1", "epsilon_plus"]


@pytest.mark.parametrize("where,model_id", [("arch", "vgg16"), ("arch", "resnet50"), ("demo", "shapes-cnn")])
@pytest.mark.parametrize("composite", ZENNIT)
def test_lrp_equals_zennit_with_the_same_composite(request, where, model_id, composite):
    from zennit import composites
    from zennit.attribution import Gradient
    from zennit.canonizers import SequentialMergeBatchNorm
    from zennit.torchvision import ResNetCanonizer, VGGCanonizer

    model = request.getfixturevalue(f"{where}_registry").get(model_id)
    assert isinstance(model, LocalModel)
    raw = raw_for(model, 3)
    x = model.prepare(raw).x.contiguous()
    ours = explain("lrp", model, raw, composite=composite)
    canonizer = {"vgg16": VGGCanonizer, "resnet50": ResNetCanonizer}.get(model_id, SequentialMergeBatchNorm)
    kwargs: dict[str, object] = {"canonizers": [canonizer()]}
    if composite == "epsilon_gamma_box":
        kwargs.update(low=model.normalize(torch.zeros(1, 3, 1, 1)), high=model.normalize(torch.ones(1, 3, 1, 1)))
    zennit_composite = composites.COMPOSITES[composite](**kwargs)
    module = copy.deepcopy(model.module).to(memory_format=torch.contiguous_format)  # zennit edits it in place
    target = ours.target.index
    with Gradient(model=module, composite=zennit_composite) as attributor:
        _, relevance = attributor(x, lambda out: out * torch.eye(out.shape[1])[[target]])
    close(ours.attribution, per_pixel(relevance))


class CaptumNet(nn.Module):
    """A ReLU network of the layers Captum's LRP has rules for (flattened by a function, which it passes)."""

    def __init__(self, bias: bool) -> None:
        super().__init__()
        torch.manual_seed(7)
        self.conv1, self.relu1 = nn.Conv2d(3, 6, 3, padding=1, bias=bias), nn.ReLU()
        self.pool = nn.MaxPool2d(2)
        self.conv2, self.relu2 = nn.Conv2d(6, 8, 3, padding=1, bias=bias), nn.ReLU()
        self.avg = nn.AdaptiveAvgPool2d(2)
        self.fc1, self.relu3 = nn.Linear(32, 10, bias=bias), nn.ReLU()
        self.fc2 = nn.Linear(10, 3, bias=bias)
        self.eval().requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.avg(self.relu2(self.conv2(self.pool(self.relu1(self.conv1(x))))))
        return self.fc2(self.relu3(self.fc1(torch.flatten(h, 1))))


def with_captum_rules(module: nn.Module, rule: str) -> nn.Module:
    module = copy.deepcopy(module)
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            layer.rule = {"epsilon": lambda: lrp_rules.EpsilonRule(epsilon=1e-9),
                          "gamma": lambda: lrp_rules.GammaRule(gamma=0.25, set_bias_to_zero=True),
                          "alpha1_beta0": lambda: lrp_rules.Alpha1_Beta0_Rule(set_bias_to_zero=True)}[rule]()
    return module


CAPTUM_LRP = [("epsilon", True, {"conv": "epsilon", "linear": "epsilon"}),
              ("gamma", False, {"conv": "gamma", "linear": "gamma"}),
              ("alpha1_beta0", False, {"conv": "z_plus", "linear": "z_plus"})]


@pytest.mark.parametrize("rule,bias,rules", CAPTUM_LRP, ids=[c[0] for c in CAPTUM_LRP])
def test_lrp_equals_captum_lrp(rule, bias, rules):
    """Epsilon with biases; gamma and alpha1-beta0 on a bias-free net of non-negative inputs, where Captum's
    rules (no split of inputs or outputs by sign) and ours do the same arithmetic."""
    from explainers.propagation.composites import Composite, RuleSettings
    from explainers.propagation.engine import one_hot, propagate
    from explainers.propagation.graph import canonize

    module = CaptumNet(bias)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        logits = module(x)
    target = int(logits.argmax())
    assert float(logits[0, target]) > 0
    canon = canonize(module)
    assigned = Composite.named(rules, RuleSettings(epsilon=1e-9, stabilizer=1e-9)).assign(canon)
    ours, _ = propagate(canon, assigned, x, lambda out: one_hot(out, target, out[:, target]))
    ref = ca.LRP(with_captum_rules(module, rule)).attribute(x.clone().requires_grad_(True), target=target)
    close(per_pixel(ours), per_pixel(ref))


class _OnEmbeddings(nn.Module):
    """A text model as a module of its embeddings, for Captum's DeepLift (its hooks see the inner ReLU)."""

    def __init__(self, model: LocalModel, inputs) -> None:
        super().__init__()
        self.inner, self.inputs = model.module, inputs

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        return self.inputs.forward(emb)


@pytest.mark.parametrize("where,model_id", [
    ("tiny", "tiny-image"), ("tiny", "tiny-tabular"), ("tiny", "tiny-text"), ("demo", "breast-cancer-mlp"),
    ("demo", "sentiment-cnn")])
def test_deeplift_matches_captum_deeplift(request, where, model_id):
    """sentiment-cnn's max over time is a function Captum passes with its gradient; from the pad baseline
    (every unit 0 after the padding mask) that is what the two-pass max rule gives too."""
    model = request.getfixturevalue(f"{where}_registry").get(model_id)
    raw = raw_for(model, 5)
    inputs = model.prepare(raw)
    ours = explain("deeplift", model, raw)
    forward_module = _OnEmbeddings(model, inputs) if model.tokenizer is not None else copy.deepcopy(model.module)
    ref = ca.DeepLift(forward_module).attribute(inputs.x.clone(), baselines=inputs.baseline("default"),
                                                target=ours.target.index).detach()[0]
    ref = ref.sum(0).numpy() if ref.dim() == 3 else ref.sum(-1).numpy() if ref.dim() == 2 else ref.numpy()
    close(ours.attribution, ref)
