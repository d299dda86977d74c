"""Excitation backprop against the paper's recursion, and its equality with LRP alpha1-beta0.

Zhang et al. 2016 pass a marginal winning probability (MWP) down the excitatory connections:

    P(a_j) = sum_i P(a_j | a_i) P(a_i),   P(a_j | a_i) = a_j w_ij+ / sum_j' a_j' w_ij'+,

starting from P = 1 at the explained output. LRP's alpha1-beta0 rule with the bias left out is

    R_j = sum_i a_j w_ij+ / (sum_j' a_j' w_ij'+) R_i,

the same recursion. Started at R = f(x) at the same output, it gives R = f(x) P at every layer, and ReLUs
pass both unchanged (an inactive unit, a_j = 0, receives nothing in either). So excitation backprop is
LRP alpha1-beta0 (bias-free z-plus) with the probabilistic normalisation: divided by the explained output,
so that the map sums to 1. The contrastive MWP subtracts the MWP of the dual unit, whose incoming weights
are the output unit's negated.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from explainers.methods.excitation_backprop import excitation_rules
from explainers.propagation.composites import COMPOSITES, Composite, RuleSettings
from explainers.propagation.engine import one_hot, propagate
from explainers.propagation.graph import canonize
from tests.explainers.conftest import raw_for
from tests.explainers.propagation.conftest import explain
from tests.explainers.propagation.test_references import CaptumNet


def mlp() -> nn.Module:
    torch.manual_seed(4)
    layers = [nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)]
    return nn.Sequential(*layers).eval().requires_grad_(False)


def numpy_mwp(module: nn.Sequential, x: np.ndarray, target: int, dual: bool = False) -> np.ndarray:
    """The paper's recursion, written plainly over the dense layers of an MLP (non-negative input)."""
    weights = [m.weight.detach().double().numpy() for m in module if isinstance(m, nn.Linear)]
    biases = [m.bias.detach().double().numpy() for m in module if isinstance(m, nn.Linear)]
    acts = [x]
    for k, (w, b) in enumerate(zip(weights, biases)):
        z = w @ acts[-1] + b
        acts.append(np.maximum(z, 0) if k < len(weights) - 1 else z)
    p = np.zeros(len(biases[-1]))
    p[target] = 1.0
    for k in range(len(weights) - 1, -1, -1):
        w = -weights[k] if dual and k == len(weights) - 1 else weights[k]
        wp, a = np.maximum(w, 0), acts[k]
        cond = a[None, :] * wp / np.maximum((wp @ a)[:, None], 1e-300)  # P(a_j | a_i), rows i
        p = cond.T @ p
    return p


@pytest.mark.parametrize("dual", [False, True])
def test_excitation_backprop_is_the_marginal_winning_probability(dual):
    module = mlp()
    x = torch.rand(1, 4, generator=torch.Generator().manual_seed(1)) + 0.1
    canon = canonize(module)
    target = 2  # a class whose unit and whose dual both have excitatory paths to active units
    ours, _ = propagate(canon, excitation_rules(canon, 1e-12, dual=dual), x, lambda out: one_hot(out, target))
    expected = numpy_mwp(module, x[0].double().numpy(), target, dual=dual)
    np.testing.assert_allclose(ours[0].double().numpy(), expected, rtol=1e-5, atol=1e-7)
    assert float(ours.sum()) == pytest.approx(1.0, abs=1e-5)


def test_excitation_backprop_is_lrp_alpha1_beta0_divided_by_the_output():
    module = CaptumNet(bias=False)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(3))
    canon = canonize(module)
    target = int(module(x).argmax())
    mwp, _ = propagate(canon, excitation_rules(canon, 1e-12), x, lambda out: one_hot(out, target))
    lrp_rules = Composite.named(COMPOSITES["z_plus"], RuleSettings(stabilizer=1e-12)).assign(canon)
    relevance, out = propagate(canon, lrp_rules, x, lambda o: one_hot(o, target, o[:, target]))
    np.testing.assert_allclose(mwp.numpy(), (relevance / out[0, target]).numpy(), rtol=1e-4, atol=1e-8)


def test_the_method_gives_probabilities_and_a_contrast(demo_registry):
    model = demo_registry.get("shapes-cnn")
    raw = raw_for(model, 0)
    plain = explain("excitation_backprop", model, raw)
    contrast = explain("excitation_backprop", model, raw, contrastive=True)
    assert plain.details["total_probability"] == pytest.approx(1.0, abs=1e-4)
    assert float(plain.attribution.sum()) == pytest.approx(1.0, rel=0.05)  # resized to the image: about kept
    assert plain.attribution.min() >= -1e-7  # probabilities
    assert contrast.details["dual_total_probability"] == pytest.approx(1.0, abs=1e-4)
    assert contrast.attribution.min() < 0 < contrast.attribution.max()
    assert float(contrast.attribution.sum()) == pytest.approx(0.0, abs=0.05)
