"""Several targets per request: the same maps as one call per target, fewer evaluations or backward passes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from explainers.errors import InvalidTarget
from explainers.methods import get_method
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from explainers.several_targets import explain_targets
from explainers.targets import MAX_TARGETS, Target, parse_targets
from tests.bundles import make_multilabel_bundle
from tests.explainers.conftest import raw_for

GRADIENT = ["saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradcam", "layercam",
            "guided_backprop"]
BLACK_BOX = ["occlusion", "rise", "lime", "kernel_shap", "shapley_sampling"]
PARAMS = {"smoothgrad": {"n_samples": 8, "seed": 3}, "rise": {"n_masks": 64, "seed": 1},
          "lime": {"n_samples": 64, "seed": 2}, "kernel_shap": {"n_samples": 64, "seed": 2},
          "shapley_sampling": {"n_permutations": 4, "seed": 2}, "integrated_gradients": {"n_steps": 8}}


def run(registry, method: str, targets: list[Target], model_id: str = "tiny-image"):
    model = registry.get(model_id)
    cls = get_method(method)
    params = parse_params(cls.Params, PARAMS.get(method, {}))
    return explain_targets(cls(), model, raw_for(model), params, targets, top_k=3)


@pytest.mark.parametrize("method", GRADIENT + BLACK_BOX)
def test_several_targets_equal_one_call_each_and_cost_less(tiny_registry, method: str) -> None:
    targets = [Target(0), Target(1), Target(2)]
    several, shared = run(tiny_registry, method, targets)
    singles = [run(tiny_registry, method, [t]) for t in targets]
    for expl, (one, _) in zip(several, singles):
        assert expl.target.index == one[0].target.index
        np.testing.assert_allclose(expl.attribution, one[0].attribution, rtol=1e-4, atol=1e-6)
    if method in GRADIENT:
        separate = sum(s.backward_passes for _, s in singles)
        assert 0 < shared.backward_passes < separate
        assert shared.backward_passes == singles[0][1].backward_passes  # one batched pass per batch
    else:
        separate = sum(s.evaluations for _, s in singles)
        assert shared.evaluations == singles[0][1].evaluations < separate  # the cost of one target


def test_vit_gradcam_targets_share_one_backward(transformer_registry) -> None:
    several, shared = run(transformer_registry, "gradcam", [Target(0), Target(1)], "tiny-vit")
    [one], _ = run(transformer_registry, "gradcam", [Target(1)], "tiny-vit")
    np.testing.assert_allclose(several[1].attribution, one.attribution, rtol=1e-4, atol=1e-6)
    assert shared.backward_passes == 1


def test_contrastive_input_x_gradient_is_the_gradient_of_the_difference(tiny_registry) -> None:
    model = tiny_registry.get("tiny-image")
    [expl], _ = run(tiny_registry, "input_x_gradient", [Target(2, versus=0)])
    inputs = model.prepare(raw_for(model))
    x = inputs.x.detach().requires_grad_(True)
    out = inputs.forward(x)
    (grad,) = torch.autograd.grad(out[0, 2] - out[0, 0], x)
    np.testing.assert_allclose(expl.attribution, (grad * x).sum(1)[0].detach().numpy(), rtol=1e-4, atol=1e-6)
    assert expl.details["versus"]["index"] == 0


def test_contrastive_integrated_gradients_sum_to_the_difference(tiny_registry) -> None:
    model = tiny_registry.get("tiny-tabular")
    cls = get_method("integrated_gradients")
    params = parse_params(cls.Params, {"n_steps": 64})
    expl = cls().explain(model, raw_for(model), params, target=1, versus=2)
    d = expl.details
    assert abs(float(expl.attribution.sum()) - (d["score_input"] - d["score_baseline"])) < 1e-3
    inputs = model.prepare(raw_for(model))
    with torch.no_grad():
        out = inputs.forward(inputs.x)
    assert d["score_input"] == pytest.approx(float(out[0, 1] - out[0, 2]), abs=1e-5)


def test_contrastive_occlusion_is_the_drop_of_the_difference(tiny_registry) -> None:
    """Black-box: the versus map is the target's map less the versus class's (scores are linear in it)."""
    model = tiny_registry.get("tiny-tabular")
    cls = get_method("occlusion")
    params = parse_params(cls.Params, {})
    raw = raw_for(model)
    both = cls().explain(model, raw, params, target=1, versus=2).attribution
    one, two = (cls().explain(model, raw, params, target=t).attribution for t in (1, 2))
    np.testing.assert_allclose(both, one - two, rtol=1e-4, atol=1e-6)


def test_propagation_loops_per_target_and_a_versus_is_refused(tiny_registry) -> None:
    several, _ = run(tiny_registry, "lrp", [Target(0), Target(1)])
    [one], _ = run(tiny_registry, "lrp", [Target(1)])
    np.testing.assert_allclose(several[1].attribution, one.attribution, rtol=1e-5)
    with pytest.raises(InvalidTarget):
        run(tiny_registry, "lrp", [Target(1, versus=0)])


@pytest.fixture(scope="module")
def multilabel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("multilabel")
    make_multilabel_bundle(root)
    return root


def test_multilabel_sigmoid_scores(multilabel: Path) -> None:
    model = ModelRegistry(multilabel, device="cpu").get("tiny-multilabel")
    inputs = model.prepare(raw_for(model))
    with torch.no_grad():
        out = inputs.forward(inputs.x)
    probs = model.probabilities(out)
    np.testing.assert_allclose(probs.numpy(), torch.sigmoid(out).numpy())
    assert float(probs.sum()) != pytest.approx(1.0)


def test_multilabel_default_explains_every_positive_label(multilabel: Path) -> None:
    from explainers.service import ExplanationService

    service = ExplanationService(ModelRegistry(multilabel, device="cpu"))
    model = service.registry.get("tiny-multilabel")
    rows = np.random.default_rng(5).normal(size=(40, 3)) * 2
    with torch.no_grad():
        probs = torch.sigmoid(model.module(torch.tensor(rows, dtype=torch.float32))).numpy()
    for row, p in zip(rows, probs):
        positive = [i for i in range(4) if p[i] > 0.5] or [int(p.argmax())]
        body = service.explain("saliency", "tiny-multilabel", {"features": [float(v) for v in row]})
        got = [e["target"]["index"] for e in body["targets"]] if "targets" in body else [body["target"]["index"]]
        assert got == positive
        if len(positive) == 1:
            assert "targets" not in body  # one positive: the one-target body
        else:
            assert body["details"]["backward_passes"] == 1
    assert any(len([i for i in range(4) if p[i] > 0.5]) > 1 for p in probs)  # the case is exercised


@pytest.mark.parametrize("target, code", [
    (list(range(MAX_TARGETS + 1)), "too_many_targets"), ([], "invalid_target"), ([0, 0], "invalid_target"),
    (["red", 0], "invalid_target"), (["purple"], "invalid_target"), ({"class": 1, "versus": 1}, "invalid_target"),
    ({"class": "red", "versus": "red"}, "invalid_target"), ({"versus": 1}, "invalid_target"),
    ([{"class": 0, "versus": 1}], "invalid_target"), ({"class": 0, "versus": 99}, "invalid_target"),
    ([True], "invalid_target"), (1.5, "invalid_target")])
def test_bad_targets(target, code: str) -> None:
    with pytest.raises(InvalidTarget) as err:
        parse_targets(target, ["red", "green", "blue"] + [f"c{i}" for i in range(20)])
    assert err.value.code == code


def test_targets_parse() -> None:
    labels = ["red", "green", "blue"]
    assert parse_targets(None, labels) is None and parse_targets("red", labels) is None
    assert parse_targets(["blue", 0], labels) == [Target(2), Target(0)]
    assert parse_targets({"class": "green", "versus": 2}, labels) == [Target(1, 2)]
