"""LIME and KernelSHAP: agreement with the lime and shap packages, Shapley properties, determinism."""

from __future__ import annotations

import itertools
import json
from math import factorial

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from explainers.discretize import Discretizer
from explainers.masking import segment
from explainers.methods import get_method, kernel_shap, lime
from explainers.methods._surrogate import cosine_distance_to_all_ones
from explainers.models.handle import LocalModel, RawInput
from explainers.models.manifest import FeatureSpec
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from tests.explainers.conftest import raw_for

TINY = ["tiny-image", "tiny-text", "tiny-tabular"]
METHODS = {"lime": lime.Lime, "kernel_shap": kernel_shap.KernelShap}

LINEAR_MODULE = '''
"""Probabilities linear in the features: [1 - (w.x + b), w.x + b]."""
import torch
from torch import nn


class LinearProbabilities(nn.Module):
    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(n_features, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = self.linear(x)
        return torch.cat([1 - p, p], dim=1)


def build(n_features: int = 10) -> nn.Module:
    return LinearProbabilities(n_features)
'''
N_LINEAR, N_LINEAR_BG = 10, 120


def explain(name: str, model: LocalModel, raw: RawInput, target: int | None = None, progress=None, **params):
    cls = METHODS[name]
    return cls().explain(model, raw, parse_params(cls.Params, params), target=target, progress=progress)


def softmax_target(model: LocalModel, batch: torch.Tensor, target: int) -> np.ndarray:
    with torch.inference_mode():
        return model.probabilities(model.module(batch))[:, target].double().numpy()


@pytest.fixture(scope="module")
def linear_model(tmp_path_factory: pytest.TempPathFactory) -> LocalModel:
    folder = tmp_path_factory.mktemp("linear") / "linear-probs"
    folder.mkdir()
    (folder / "lime_shap_linear.py").write_text(LINEAR_MODULE)
    rng = np.random.default_rng(11)
    save_file({"linear.weight": torch.from_numpy(rng.uniform(-0.04, 0.04, (1, N_LINEAR)).astype(np.float32)),
               "linear.bias": torch.tensor([0.5])}, str(folder / "weights.safetensors"))
    np.save(folder / "background.npy", rng.normal(size=(N_LINEAR_BG, N_LINEAR)).astype(np.float32))
    (folder / "model.json").write_text(json.dumps({
        "id": "linear-probs", "modality": "tabular", "architecture": "lime_shap_linear:build",
        "architecture_kwargs": {"n_features": N_LINEAR}, "weights": "weights.safetensors",
        "labels": ["no", "yes"], "output": "probabilities",
        "tabular": {"features": [{"name": f"x{i}"} for i in range(N_LINEAR)]}}))
    return ModelRegistry(folder.parent, device="cpu").get("linear-probs")


@pytest.fixture(scope="module")
def cancer(demo_registry: ModelRegistry) -> LocalModel:
    return demo_registry.get("breast-cancer-mlp")  # the shipped bundle: missing is a failure


# -- LIME against the lime package ---------------------------------------------------------------
@pytest.mark.parametrize("scale,lime_width", [(1.0, 0.25), (100.0, 25.0)], ids=["image", "text"])
def test_lime_fit_equals_lime_base(scale: float, lime_width: float) -> None:
    from lime.lime_base import LimeBase
    from sklearn.linear_model import Ridge

    rng = np.random.default_rng(0)
    data = lime.lime_samples(rng, 400, 12).astype(np.float64)
    labels = np.column_stack([1 - data @ rng.uniform(0, 0.08, 12), data @ rng.uniform(0, 0.08, 12)])
    labels[:, 1] += rng.normal(0, 0.01, len(data))
    distances = cosine_distance_to_all_ones(data.astype(bool))
    coef, intercept, score = lime.lime_fit(data, labels[:, 1], distances, 0.25, 1.0)

    def kernel(d: np.ndarray) -> np.ndarray:  # lime's own default kernel
        return np.sqrt(np.exp(-(d ** 2) / lime_width ** 2))

    ref = LimeBase(kernel).explain_instance_with_data(
        data, labels, distances * scale, 1, num_features=12, feature_selection="none",
        model_regressor=Ridge(alpha=1, fit_intercept=True, random_state=0))
    ref_intercept, ref_exp, ref_score, ref_local = ref
    ref_coef = np.zeros(12)
    for i, w in ref_exp:
        ref_coef[i] = w
    np.testing.assert_allclose(coef, ref_coef, rtol=1e-9, atol=1e-12)
    assert intercept == pytest.approx(ref_intercept, abs=1e-12)
    assert score == pytest.approx(ref_score, abs=1e-12)
    assert intercept + coef.sum() == pytest.approx(float(ref_local[0]), abs=1e-12)


def test_lime_text_equals_lime_base_on_the_same_samples(tiny_registry: ModelRegistry) -> None:
    from lime.lime_base import LimeBase
    from sklearn.metrics import pairwise_distances

    model = tiny_registry.get("tiny-text")
    raw = raw_for(model, seed=2)
    ours = explain("lime", model, raw, seed=5, n_samples=600)
    ids = model.prepare(raw).native
    assert ids is not None and model.tokenizer is not None
    data = lime.lime_samples(np.random.default_rng(5), 600, ids.shape[1])
    batch = torch.where(torch.from_numpy(data), ids, torch.full_like(ids, model.tokenizer.pad_id))
    with torch.inference_mode():
        labels = model.module(batch).softmax(-1).double().numpy()
    distances = pairwise_distances(data, data[:1], metric="cosine").ravel() * 100  # as lime_text does
    intercept, exp, score, _ = LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / 25.0 ** 2))).explain_instance_with_data(
        data.astype(float), labels, distances, ours.target.index, num_features=data.shape[1],
        feature_selection="none")
    ref = np.zeros(data.shape[1])
    for i, w in exp:
        ref[i] = w
    np.testing.assert_allclose(ours.attribution, ref, atol=2e-6)
    assert ours.details["intercept"] == pytest.approx(intercept, abs=2e-6)
    assert ours.details["score"] == pytest.approx(score, abs=2e-6)


def test_lime_tabular_equals_lime_base_on_the_same_samples(tiny_registry: ModelRegistry) -> None:
    from lime.lime_base import LimeBase

    model = tiny_registry.get("tiny-tabular")
    raw = RawInput(features=np.array([0.3, -1.2, 0.8, 1.0]))
    ours = explain("lime", model, raw, seed=9, n_samples=500)
    assert model.background is not None and model.manifest.tabular is not None
    disc = Discretizer.fit(model.background, model.manifest.tabular.features)
    rng = np.random.default_rng(9)
    bins = disc.sample_bins(rng, 500)
    rows = disc.sample_values(rng, bins)
    rows[0], bins[0] = raw.features, disc.bins(raw.features)[0]
    data = (bins == bins[0]).astype(float)
    labels = np.column_stack([softmax_target(model, torch.from_numpy(rows.astype(np.float32)), k) for k in range(3)])
    distances = np.linalg.norm(data - data[0], axis=1)  # lime_tabular: Euclidean on the binary representation
    width = 0.75 * np.sqrt(4)
    intercept, exp, score, _ = LimeBase(lambda d: np.sqrt(np.exp(-(d ** 2) / width ** 2))).explain_instance_with_data(
        data, labels, distances, ours.target.index, num_features=4, feature_selection="none")
    ref = np.zeros(4)
    for i, w in exp:
        ref[i] = w
    np.testing.assert_allclose(ours.attribution, ref, atol=2e-6)
    assert ours.details["intercept"] == pytest.approx(intercept, abs=2e-6)
    assert ours.details["conditions"][3] == "kind = 1"
    assert ours.details["kernel_width"] == pytest.approx(width)


# -- both methods on every tiny modality -----------------------------------------------------------
@pytest.mark.parametrize("name", sorted(METHODS))
@pytest.mark.parametrize("model_id", TINY)
def test_shape_finiteness_progress_and_seed(tiny_registry: ModelRegistry, name: str, model_id: str) -> None:
    model = tiny_registry.get(model_id)
    raw = raw_for(model, seed=3)
    seen: list[float] = []
    params = {"n_samples": 300, "max_exact_features": 0} if name == "kernel_shap" else {"n_samples": 300}
    first = explain(name, model, raw, progress=seen.append, **params)
    again = explain(name, model, raw, **params)
    other = explain(name, model, raw, seed=1, **params)
    expected = {"tiny-image": (16, 16), "tiny-text": (len(first.tokens or []),), "tiny-tabular": (4,)}[model_id]
    assert first.attribution.shape == expected and np.isfinite(first.attribution).all()
    np.testing.assert_array_equal(first.attribution, again.attribution)
    assert seen and seen[-1] == 1.0 and all(a <= b for a, b in zip(seen, seen[1:])) and seen[0] > 0
    if name == "lime" or not first.details["exact"]:
        assert not np.array_equal(first.attribution, other.attribution)
    assert first.details["explained"] == "probabilities"
    assert get_method(name) is METHODS[name]


def superpixel_values(attribution: np.ndarray, labels: np.ndarray) -> np.ndarray:
    first = np.unique(labels.ravel(), return_index=True)[1]
    return attribution.ravel()[first].astype(np.float64)


@pytest.mark.parametrize("model_id,params", [
    ("tiny-image", {}), ("tiny-image", {"n_segments": 8, "segmentation": "grid"}), ("tiny-text", {}),
    ("tiny-text", {"max_exact_features": 0, "n_samples": 40}), ("tiny-tabular", {}),
    ("tiny-tabular", {"max_exact_features": 0, "n_samples": 16})])
def test_kernel_shap_efficiency(tiny_registry: ModelRegistry, model_id: str, params: dict) -> None:
    model = tiny_registry.get(model_id)
    raw = raw_for(model, seed=6)
    out = explain("kernel_shap", model, raw, **params)
    d = out.details
    values = out.attribution.astype(np.float64)
    if model_id == "tiny-image":
        assert raw.image is not None
        values = superpixel_values(out.attribution, segment(raw.image, params.get("segmentation", "slic"),
                                                            params.get("n_segments", 50)))
    assert abs(d["efficiency_gap"]) < 1e-6
    assert d["base_value"] + values.sum() == pytest.approx(d["score"], abs=1e-5)
    assert d["score"] == pytest.approx(out.target.score, abs=1e-6)


# -- KernelSHAP against exact Shapley values --------------------------------------------------------
@pytest.mark.parametrize("params", [{}, {"max_exact_features": 0, "n_samples": 200}], ids=["exact", "sampled"])
def test_kernel_shap_on_a_linear_model_is_w_times_x_minus_mean(linear_model: LocalModel, params: dict) -> None:
    assert linear_model.background is not None
    x = np.linspace(-1.5, 1.5, N_LINEAR)
    out = explain("kernel_shap", linear_model, RawInput(features=x), target=1, n_background=N_LINEAR_BG, **params)
    w = linear_model.module.linear.weight[0].double().numpy()
    expected = w * (x - linear_model.background.astype(np.float64).mean(0))
    np.testing.assert_allclose(out.attribution, expected, atol=1e-6)
    assert out.details["exact"] == (not params)
    assert out.details["base_value"] == pytest.approx(0.5 + w @ linear_model.background.mean(0), abs=1e-6)
    if params:
        assert out.details["n_evaluations"] <= 202


def shapley_of(v, m: int) -> np.ndarray:
    """The Shapley values of a game v(set of features) by the formula."""
    phi = np.zeros(m)
    for i in range(m):
        others = [j for j in range(m) if j != i]
        for k in range(m):
            for s in itertools.combinations(others, k):
                weight = factorial(k) * factorial(m - k - 1) / factorial(m)
                phi[i] += weight * (v(set(s) | {i}) - v(set(s)))
    return phi


def test_kernel_shap_exact_equals_brute_force_shapley(tiny_registry: ModelRegistry) -> None:
    model = tiny_registry.get("tiny-tabular")
    assert model.background is not None
    x = np.array([0.4, -0.7, 1.3, 2.0])
    out = explain("kernel_shap", model, RawInput(features=x), target=2, n_background=len(model.background))
    bg = torch.from_numpy(model.background)
    xt = torch.tensor(x, dtype=torch.float32)

    def v(subset: set) -> float:
        keep = torch.zeros(4, dtype=torch.bool)
        keep[sorted(subset)] = True
        return float(softmax_target(model, torch.where(keep, xt, bg), 2).mean())

    assert out.details["exact"]
    np.testing.assert_allclose(out.attribution, shapley_of(v, 4), atol=1e-6)


def test_the_design_enumerates_the_outer_sizes_and_samples_distinct_pairs() -> None:
    from explainers.methods._shapley_design import coalition_design, size_weights

    d = coalition_design(np.random.default_rng(0), 14, 2000)
    assert d.enumerated_sizes == [1, 2, 12, 13] and d.enumerated == 2 * 14 + 2 * 91
    sampled = d.masks[d.enumerated:]
    assert len(d.masks) == 2000 and (sampled[0::2] == ~sampled[1::2]).all()  # each followed by its complement
    assert len(np.unique(d.masks, axis=0)) == len(d.masks)  # without replacement
    assert set(sampled.sum(1)) <= set(range(3, 12))
    assert d.weights.sum() == pytest.approx(1.0) and (d.weights > 0).all()
    w = size_weights(14)
    enumerated_share = (w[1] + w[2] + w[12] + w[13]) / w.sum()
    assert d.weights[:d.enumerated].sum() == pytest.approx(enumerated_share)
    sizes = np.minimum(sampled[0::2].sum(1), 14 - sampled[0::2].sum(1))
    drawn = np.bincount(sizes, weights=d.draws, minlength=8)[3:] / d.draws.sum()
    expected = np.array([w[s] + (w[14 - s] if s != 7 else 0) for s in range(3, 8)])
    np.testing.assert_allclose(drawn, expected / expected.sum(), atol=0.02)  # sizes by the kernel
    exact, weights = kernel_shap.all_coalitions(5)
    assert len(exact) == 30 and weights[exact.sum(1) == 1][0] == pytest.approx(4 / (5 * 1 * 4))


def test_the_interactions_surrogate_is_exact_on_a_game_of_order_three() -> None:
    """A game with pair and triple terms: the order-three fit on a sampled design finds its Shapley values
    (up to the small ridge); the additive fit with paired sampling does not."""
    from explainers.methods._shapley_design import Surrogate, coalition_design

    m = 9
    rng = np.random.default_rng(3)
    single, pairs, triples = rng.normal(size=m), {(0, 1): 1.5, (2, 5): -1.0}, {(1, 3, 4): 2.0, (0, 6, 8): -1.2}

    def v(s: set) -> float:
        return (sum(single[i] for i in s) + sum(c for t, c in pairs.items() if set(t) <= s)
                + sum(c for t, c in triples.items() if set(t) <= s))

    exact = shapley_of(v, m)
    d = coalition_design(np.random.default_rng(0), m, 300)
    assert d.pairs > 0
    y = np.array([v(set(np.flatnonzero(z))) for z in d.masks])
    total = v(set(range(m)))
    rich = Surrogate(d.masks, total, list(range(m))).solve(y, d.weights)
    plain = Surrogate(d.masks, total).solve(y, d.weights)
    assert rich.sum() == pytest.approx(total) and plain.sum() == pytest.approx(total)
    np.testing.assert_allclose(rich, exact, atol=0.01)
    assert np.abs(rich - exact).max() < 0.25 * np.abs(plain - exact).max()


# -- the breast-cancer demo: shap and LIME -----------------------------------------------------------
def test_kernel_shap_agrees_with_shap_kernel_explainer(cancer: LocalModel) -> None:
    import shap

    assert cancer.background is not None
    raw = raw_for(cancer, seed=1)
    ours = explain("kernel_shap", cancer, raw, n_samples=4096, n_background=50, batch_size=4096)
    target = ours.target.index
    picked = np.sort(np.random.default_rng(0).choice(len(cancer.background), 50, replace=False))
    bg = cancer.background[picked] if len(cancer.background) > 50 else cancer.background

    def f(rows: np.ndarray) -> np.ndarray:
        return softmax_target(cancer, torch.from_numpy(np.asarray(rows, dtype=np.float32)), target)

    np.random.seed(0)  # shap samples with numpy's global generator; at 4096 samples its noise and ours
    # leave a correlation of about 0.98 (0.93 to 0.97 at 1024 to 2048)
    explainer = shap.KernelExplainer(f, bg)
    ref = np.asarray(explainer.shap_values(raw.features, nsamples=4096, l1_reg=False, silent=True)).ravel()
    assert ours.details["base_value"] == pytest.approx(float(explainer.expected_value), abs=1e-5)
    assert np.corrcoef(ours.attribution, ref)[0, 1] >= 0.95
    np.testing.assert_allclose(ours.attribution.sum(), ref.sum(), atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1])
def test_lime_and_kernel_shap_agree_on_the_top_features(cancer: LocalModel, seed: int) -> None:
    raw = raw_for(cancer, seed=seed)
    by_lime = explain("lime", cancer, raw, n_samples=2000, batch_size=2000).attribution
    by_shap = explain("kernel_shap", cancer, raw, batch_size=4096).attribution
    top_lime = set(np.argsort(-np.abs(by_lime))[:5])
    top_shap = set(np.argsort(-np.abs(by_shap))[:5])
    assert len(top_lime & top_shap) >= 2, (top_lime, top_shap)  # 5 of 30 at random: 0.8 on average
    assert np.corrcoef(by_lime, by_shap)[0, 1] >= 0.5


# -- the discretiser -------------------------------------------------------------------------------
def test_discretizer_bins_conditions_and_sampling() -> None:
    rng = np.random.default_rng(4)
    bg = np.column_stack([rng.normal(10, 3, 200), rng.integers(0, 3, 200), np.full(200, 7.0),
                          rng.integers(0, 2, 200)])
    features = [FeatureSpec(name="radius"), FeatureSpec(name="count"), FeatureSpec(name="constant"),
                FeatureSpec(name="sex", kind="categorical", values=[0, 1], labels=["f", "m"])]
    disc = Discretizer.fit(bg, features)
    assert [len(c) for c in disc.cuts] == [3, 2, 0, 2]
    real = disc.count[:, :4] > 0
    assert real[0].all() and real[1, :3].all() and real[2, 0] and real[3, :2].all()
    q1, q2 = disc.cuts[0][:2]
    assert disc.conditions(np.array([q1, 1.0, 7.0, 1.0])) == [
        f"radius <= {q1:.4g}", "0 < count <= 1", "constant is any value", "sex = m"]
    assert disc.condition(0, 1) == f"{q1:.4g} < radius <= {q2:.4g}"
    assert disc.condition(0, 3).startswith("radius > ")
    bins = disc.sample_bins(rng, 40000)
    for f in range(4):
        want = np.bincount(disc.bins(bg)[:, f], minlength=disc.count.shape[1]) / len(bg)
        np.testing.assert_allclose(np.bincount(bins[:, f], minlength=len(want)) / len(bins), want, atol=0.01)
    values = disc.sample_values(rng, bins)
    np.testing.assert_array_equal(disc.bins(values), bins)
    assert np.isin(values, bg).all()
    assert disc.bins(np.array([0.0, 0.0, 7.0, 5.0]))[0, 3] >= disc.count.shape[1]  # unseen category
