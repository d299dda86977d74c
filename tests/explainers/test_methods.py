"""Properties every registered local method must have, generated from the registry.

Global methods (scope "global": they explain a model, not an input) are left out here by their scope
and have their own generic tests in `test_global_methods.py`; the params test covers both scopes.
"""

from __future__ import annotations

from typing import get_args

import numpy as np
import pytest
import torch

from explainers.errors import InvalidParams, InvalidTarget
from explainers.methods import all_methods, get_method, local_methods
from explainers.models.handle import LocalModel, RawInput
from explainers.params import parse_params
from explainers.types import Modality, Scope
from tests.explainers.conftest import raw_for

LOCAL = {name: cls for name, cls in all_methods().items() if cls.scope is Scope.LOCAL}
CASES = [(name, modality) for name, cls in LOCAL.items() for modality in sorted(cls.modalities, key=lambda m: m.value)]
PARAM_CASES = [(name, modality) for name, cls in all_methods().items()
               for modality in sorted(cls.modalities, key=lambda m: m.value)]
TINY = {Modality.IMAGE: "tiny-image", Modality.TEXT: "tiny-text", Modality.TABULAR: "tiny-tabular"}
TINY_TRANSFORMER = {Modality.IMAGE: "tiny-vit", Modality.TEXT: "tiny-text-transformer"}


@pytest.fixture
def tiny_for(tiny_registry, request):
    """The tiny model of a modality a method explains: the CNN-like one, else (attention methods) the
    transformer."""
    def pick(name: str, modality: Modality) -> LocalModel:
        model = tiny_registry.get(TINY[modality])
        if LOCAL[name].refusal(model.manifest) is not None:
            model = request.getfixturevalue("transformer_registry").get(TINY_TRANSFORMER[modality])
        return model
    return pick


def hooks_left(module: torch.nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._backward_hooks) + len(m._forward_pre_hooks)
               for m in module.modules())


# Cheap settings for the costly black-box methods: these tests check properties, not quality.
FAST = {"rise": {"n_masks": 200}, "lime": {"n_samples": 100}, "kernel_shap": {"n_samples": 64},
        "anchors": {"max_evaluations": 3000}, "cle": {"n_samples": 100}, "shapley_sampling": {"n_permutations": 8},
        "extremal_perturbation": {"n_steps": 20}}


def explain(name: str, model: LocalModel, raw: RawInput, target=None, **params):
    cls = get_method(name)
    return cls().explain(model, raw, parse_params(cls.Params, {**FAST.get(name, {}), **params}), target=target)


@pytest.mark.parametrize("name,modality", CASES, ids=[f"{n}-{m.value}" for n, m in CASES])
def test_shape_finiteness_determinism_and_no_leftover_hooks(tiny_for, name, modality):
    model = tiny_for(name, modality)
    raw = raw_for(model, seed=3)
    if modality is Modality.IMAGE:  # a size other than the model's: the map comes back at this size
        raw = RawInput(image=np.random.default_rng(3).integers(0, 256, size=(21, 35, 3), dtype=np.uint8))
    first = explain(name, model, raw)
    second = explain(name, model, raw)
    expected = {Modality.IMAGE: (21, 35), Modality.TEXT: (len(first.tokens or []),),
                Modality.TABULAR: (len(first.feature_names or []),)}[modality]
    assert expected[0] > 0
    assert first.attribution.shape == expected
    assert first.attribution.dtype == np.float32
    assert np.isfinite(first.attribution).all()
    np.testing.assert_array_equal(first.attribution, second.attribution)
    assert hooks_left(model.module) == 0
    if not first.signed:
        assert first.attribution.min() >= 0
    assert first.target == first.predictions[0]
    assert first.details["explained"] == get_method(name).Params().score


@pytest.mark.parametrize("name,modality", CASES, ids=[f"{n}-{m.value}" for n, m in CASES])
def test_target_selection_changes_the_explanation(tiny_for, name, modality):
    model = tiny_for(name, modality)
    raw = raw_for(model, seed=4)
    by_label = explain(name, model, raw, target=model.labels[1])
    by_index = explain(name, model, raw, target=1)
    other = explain(name, model, raw, target=0)
    assert by_label.target.index == by_index.target.index == 1
    np.testing.assert_array_equal(by_label.attribution, by_index.attribution)
    if by_index.details.get("class_agnostic"):  # attention rollout: one map whatever the class
        np.testing.assert_array_equal(by_index.attribution, other.attribution)
    else:
        assert not np.array_equal(by_index.attribution, other.attribution) or by_index.details != other.details
    with pytest.raises(InvalidTarget):
        explain(name, model, raw, target=len(model.labels))
    with pytest.raises(InvalidTarget):
        explain(name, model, raw, target="no such label")


GRADIENT_CASES = [(n, m) for n, m in CASES  # methods that can explain both the logit and the probability
                  if set(get_args(LOCAL[n].Params.model_fields["score"].annotation)) == {"logits",
                                                                                                  "probabilities"}]


@pytest.mark.parametrize("name,modality", GRADIENT_CASES, ids=[f"{n}-{m.value}" for n, m in GRADIENT_CASES])
def test_probabilities_and_logits_can_be_explained(tiny_for, name, modality):
    model = tiny_for(name, modality)
    raw = raw_for(model, seed=5)
    probs = explain(name, model, raw, score="probabilities")
    logits = explain(name, model, raw, score="logits")
    assert probs.details["explained"] == "probabilities" and logits.details["explained"] == "logits"
    if name == "anchors":  # the class decision is the same on either score: the same anchor
        assert probs.details["anchor"] == logits.details["anchor"]
        return
    if logits.details.get("class_agnostic"):  # attention rollout reads no score
        np.testing.assert_array_equal(probs.attribution, logits.attribution)
        return
    assert not np.allclose(probs.attribution, logits.attribution)


def test_hooks_are_removed_when_a_method_fails(tiny_registry):
    model = tiny_registry.get("tiny-image")
    raw = raw_for(model)
    for layer in ["no.such.layer", "2"]:  # unknown; a layer whose output is not a 4-D map
        with pytest.raises(InvalidParams):
            explain("gradcam", model, raw, layer=layer)
    assert hooks_left(model.module) == 0


def test_seed_controls_smoothgrad(tiny_registry):
    model = tiny_registry.get("tiny-image")
    raw = raw_for(model)
    a = explain("smoothgrad", model, raw, seed=1).attribution
    b = explain("smoothgrad", model, raw, seed=2).attribution
    assert not np.array_equal(a, b)


def test_integrated_gradients_converges_with_more_steps(tiny_registry):
    model = tiny_registry.get("tiny-image")
    raw = raw_for(model)
    runs = [explain("integrated_gradients", model, raw, n_steps=n).details for n in (2, 16, 256)]
    gaps = [abs(r["completeness_gap"]) for r in runs]
    assert gaps[2] < gaps[0] and gaps[2] < 2e-3 * abs(runs[2]["score_difference"]), gaps


def test_local_methods_are_those_of_local_scope():
    assert set(local_methods()) == set(LOCAL) and LOCAL


@pytest.mark.parametrize("name,modality", PARAM_CASES, ids=[f"{n}-{m.value}" for n, m in PARAM_CASES])
def test_every_params_model_rejects_unknown_keys_and_has_bounds(name, modality):
    cls = all_methods()[name]
    with pytest.raises(InvalidParams):
        parse_params(cls.Params, {"not_a_param": 1})
    for field_name, field in cls.Params.model_fields.items():
        assert field.description, f"{name}.{field_name} has no description"
        if field.annotation in (int, float):
            bounds = {type(m).__name__ for m in field.metadata}
            assert {"Ge", "Le"} <= bounds, f"{name}.{field_name} is unbounded"


@pytest.mark.parametrize("name", ["gradcam", "gradcam++", "layercam", "scorecam"])
def test_cam_methods_leave_the_resizing_to_the_base(tiny_registry, name):
    """A CAM comes back from the method at its layer's resolution; the base resizes it once, to the image."""
    from explainers.base import Context

    model = tiny_registry.get("tiny-image")
    raw = RawInput(image=np.random.default_rng(0).integers(0, 256, size=(21, 35, 3), dtype=np.uint8))
    cls = get_method(name)
    p = parse_params(cls.Params, FAST.get(name, {}))
    with model.lock:
        low = cls()._attribute(Context(model, model.prepare(raw), None, p, 5), p)
    assert tuple(low.values.shape) == tuple(low.details["cam_shape"]) == (8, 8)  # the stride-2 layer of 16 px
    assert explain(name, model, raw).attribution.shape == (21, 35)


def test_methods_that_read_the_module_are_refused_on_remote_manifests(tiny_registry):
    manifest = tiny_registry.manifest("tiny-image").model_copy(update={"remote": object()})
    for name, cls in LOCAL.items():
        refusal = cls.refusal(manifest)
        if Modality.IMAGE in cls.modalities:
            assert (refusal is not None) is cls.needs_module, name
