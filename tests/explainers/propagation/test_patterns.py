"""PatternNet's patterns: the signal direction of the paper's toy problem, storage, and the methods on models."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch
from torch import nn

from explainers.models.handle import LocalModel
from explainers.pattern_store import PatternStore, compute_patterns, patterns_for, store_patterns
from explainers.propagation.engine import one_hot, propagate
from explainers.propagation.graph import canonize
from explainers.propagation.patterns import PatternStatistics
from tests.explainers.conftest import raw_for
from tests.explainers.propagation.conftest import explain

SIGNAL, DISTRACTOR = np.array([1.0, 0.0]), np.array([1.0, 1.0])  # Kindermans et al. 2018, section 2


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def toy() -> tuple[nn.Module, torch.Tensor]:
    """x = a_s s + a_d d: the weights w = (1, -1) cancel the distractor (w . a_d = 0) and read y = s."""
    rng = np.random.default_rng(0)
    s, d = rng.normal(size=(5000, 1)), rng.normal(size=(5000, 1))
    x = torch.tensor(s * SIGNAL + d * DISTRACTOR, dtype=torch.float32)
    model = nn.Sequential(nn.Linear(2, 2, bias=False)).eval().requires_grad_(False)
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, -1.0], [-1.0, 1.0]]))  # class 0: y = s, class 1: y = -s
    return model, x


@pytest.mark.parametrize("estimator", ["linear", "positive", "negative"])
def test_the_patterns_recover_the_signal_where_the_gradient_follows_the_distractor(estimator):
    model, x = toy()
    stats = PatternStatistics(canonize(model))
    stats.add([(x[i:i + 500], None) for i in range(0, len(x), 500)])
    pattern = stats.patterns().layers["0"][estimator][0].double().numpy()
    weight = model[0].weight[0].double().numpy()
    assert abs(weight @ DISTRACTOR) < 1e-12  # the gradient is chosen by the distractor ...
    assert cosine(weight, SIGNAL) < 0.75  # ... and does not point at the signal
    assert abs(cosine(pattern, SIGNAL)) >= 0.99  # the pattern does
    assert float(pattern @ weight) == pytest.approx(1.0, abs=1e-6)  # normalised: w . a = 1


def test_patternnet_back_projects_the_estimated_signal():
    """On the linear toy, PatternNet's map of an input is the pattern times the output: the signal estimate."""
    model, x = toy()
    canon = canonize(model)
    stats = PatternStatistics(canon)
    stats.add([(x, None)])
    patterns = stats.patterns()
    point = torch.tensor([[0.3, 2.0]])
    for estimator in ("linear", "two_component"):
        rules = {"0": patterns.rule("0", estimator, attribution=False, project=False)}
        signal, out = propagate(canon, rules, point, lambda o: one_hot(o, 0, o[:, 0]))
        assert abs(cosine(signal[0].double().numpy(), SIGNAL)) >= 0.99
        # the signal estimate a y: along a_s = (1, 0), its first coordinate is y = s (0.3 - 2.0 here)
        assert float(signal[0, 0]) == pytest.approx(float(out[0, 0]), rel=0.05)
        assert abs(float(signal[0, 1])) <= 0.05 * abs(float(out[0, 0]))


def test_patterns_are_stored_and_found_again(tiny_registry, tmp_path):
    model = tiny_registry.get("tiny-image")
    assert isinstance(model, LocalModel)
    raw = raw_for(model, 0)
    with model.lock:
        patterns = compute_patterns(model, [raw, raw_for(model, 1)], origin="request inputs")
    store = PatternStore(tmp_path)
    path = store.save(model, patterns)
    assert path.name.startswith(f"tiny-image-{model.weights_hash[:24]}")
    loaded = store.load(model)
    assert loaded is not None and loaded.n_samples == 2 and loaded.meta["origin"] == "request inputs"
    assert set(loaded.layers) == set(patterns.layers)
    for target, kinds in patterns.layers.items():
        weight = canonize(model.module).graph.get_submodule(target).weight
        for kind, tensor in kinds.items():
            assert tensor.shape == weight.shape
            torch.testing.assert_close(loaded.layers[target][kind], tensor)


def test_a_newer_file_replaces_the_patterns_in_memory(tiny_registry, tmp_path):
    """A job in a worker stores new patterns: the API process sees them on its next request."""
    model = tiny_registry.get("tiny-image")
    old_state = model.state_dir
    model.state_dir = tmp_path
    try:
        first = patterns_for(model)  # from the bundle's 24 samples
        assert first.n_samples == 24
        with model.lock:
            newer = compute_patterns(model, [raw_for(model, 3)], origin="request inputs")
        path = PatternStore(tmp_path).save(model, newer)
        later = time.time() + 5
        os.utime(path, (later, later))
        assert patterns_for(model).n_samples == 1
        store_patterns(model, first)
        assert patterns_for(model).n_samples == 24
    finally:
        model.state_dir = old_state


@pytest.mark.parametrize("model_id", ["shapes-cnn", "sentiment-cnn", "breast-cancer-mlp"])
def test_the_pattern_methods_run_on_the_shipped_models(demo_registry, model_id):
    model = demo_registry.get(model_id)
    raw = raw_for(model, 0)
    maps = {}
    for method in ("patternnet", "pattern_attribution"):
        for estimator in ("linear", "two_component"):
            expl = explain(method, model, raw, estimator=estimator)
            assert np.isfinite(expl.attribution).all() and np.abs(expl.attribution).max() > 0
            assert expl.details["pattern_samples"] > 0
            maps[method, estimator] = expl.attribution
    assert not np.allclose(maps["patternnet", "linear"], maps["patternnet", "two_component"])
    assert not np.allclose(maps["patternnet", "linear"], maps["pattern_attribution", "linear"])
