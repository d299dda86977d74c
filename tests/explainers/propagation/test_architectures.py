"""Every propagation method on ResNet-18, ResNet-50, VGG-16 and DenseNet-121 (random weights), and no leftovers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainers.models.handle import LocalModel
from explainers.pattern_store import compute_patterns, store_patterns
from explainers.propagation.graph import canonize
from tests.explainers.conftest import raw_for
from tests.explainers.propagation.conftest import ARCHS, PROPAGATION, explain, hooks_on

# VGG-16's patterns need its dense layers' statistics: 3 x 100 M floats, more than a test should hold
PATTERN_ARCHS = {"resnet18", "resnet50", "densenet121"}


@pytest.fixture(scope="module")
def with_patterns(arch_registry):
    """Patterns of the convolutional architectures from four random images (their bundles ship no samples)."""
    for arch in PATTERN_ARCHS:
        model = arch_registry.get(arch)
        assert isinstance(model, LocalModel)
        with model.lock:
            store_patterns(model, compute_patterns(model, [raw_for(model, s) for s in range(4)], "request inputs"))
    return arch_registry


CASES = [(a, m) for a in ARCHS for m in PROPAGATION if a in PATTERN_ARCHS or not m.startswith("pattern")]


@pytest.mark.parametrize("arch,method", CASES)
def test_every_propagation_method_explains_the_architecture(with_patterns, arch, method):
    model = with_patterns.get(arch)
    assert isinstance(model, LocalModel)
    raw = raw_for(model, 7)
    x = model.prepare(raw).x
    with torch.inference_mode():
        before = model.module(x)
    expl = explain(method, model, raw)
    assert expl.attribution.shape == (64, 64) and np.isfinite(expl.attribution).all()
    assert np.abs(expl.attribution).max() > 0
    assert expl.target.index == int(before.argmax())
    assert hooks_on(model.module) == 0 and hooks_on(canonize(model.module).graph) == 0
    with torch.inference_mode():
        assert torch.equal(model.module(x), before)
    assert all(p.grad is None for p in model.module.parameters())
