"""Properties every registered global method must have, generated from the registry: it runs on the tiny
model of each modality it declares, its payload is finite JSON with a readable chart, it is deterministic
under its seed, and it leaves no hook behind. (The params test in test_methods.py covers both scopes.)"""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from explainers.errors import InvalidInput, InvalidParams, InvalidTarget, WrongScope
from explainers.global_base import GlobalExplainer
from explainers.methods import all_methods, get_global_method, get_method, global_methods
from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService
from explainers.types import Execution, Modality, Scope, Takes
from tests.conftest import png_bytes
from tests.explainers.test_methods import TINY, hooks_left

GLOBAL = {name: cls for name, cls in all_methods().items() if cls.scope is Scope.GLOBAL}
CASES = [(name, m) for name, cls in GLOBAL.items() for m in sorted(cls.modalities, key=lambda m: m.value)]
FAST = {"normlime": {"n_samples": 40, "max_samples": 5, "n_concepts": 3, "min_count": 1},
        "activation_maximisation": {"n_steps": 3}, "feature_inversion": {"n_steps": 3},
        "rule_extraction": {"n_perturbed": 200}}
RESULT = {"normlime": "rankings", "activation_maximisation": "images", "feature_inversion": "images",
          "rule_extraction": "rules"}


@pytest.fixture(scope="module")
def service(tiny_registry: ModelRegistry) -> ExplanationService:
    return ExplanationService(tiny_registry)


def body_for(name: str, seed: int = 0) -> dict:
    body: dict = {"params": {**FAST[name], "seed": seed}}
    if GLOBAL[name].takes is Takes.INPUT:
        rgb = np.random.default_rng(5).integers(0, 256, size=(20, 24, 3), dtype=np.uint8)
        body["input"] = {"image": base64.b64encode(png_bytes(rgb)).decode()}
    return body


def finite(node: object) -> bool:
    if isinstance(node, float):
        return bool(np.isfinite(node))
    if isinstance(node, dict):
        return all(finite(v) for v in node.values())
    if isinstance(node, list):
        return all(finite(v) for v in node)
    return True


def test_the_global_methods_are_registered_with_their_scope() -> None:
    assert set(GLOBAL) == set(global_methods()) == set(RESULT)
    for name, cls in GLOBAL.items():
        assert issubclass(cls, GlobalExplainer) and cls.execution is Execution.ASYNC
        assert get_global_method(name) is cls
        with pytest.raises(WrongScope) as err:
            get_method(name)
        assert err.value.code == "global_method"
    with pytest.raises(WrongScope) as err:
        get_global_method("gradcam")
    assert err.value.code == "local_method"


@pytest.mark.parametrize("name,modality", CASES, ids=[f"{n}-{m.value}" for n, m in CASES])
def test_runs_deterministically_on_every_modality_it_declares(service: ExplanationService, tiny_registry,
                                                              name: str, modality: Modality) -> None:
    model_id = TINY[modality]
    seen: list[float] = []
    first = service.explain_model(name, model_id, body_for(name), progress=seen.append)
    again = service.explain_model(name, model_id, body_for(name))
    assert first["scope"] == "global" and first["method"] == name and first["modality"] == modality.value
    assert first[RESULT[name]], first
    assert finite(first) and json.loads(json.dumps(first)) == first
    strip = {k: v for k, v in first.items() if k != "timing_ms"}
    assert strip == {k: v for k, v in again.items() if k != "timing_ms"}
    assert seen and seen[-1] == 1.0 and all(a <= b for a, b in zip(seen, seen[1:]))
    chart = Image.open(io.BytesIO(base64.b64decode(first["chart_png"])))
    assert chart.format == "PNG" and chart.width >= 100
    if model_id != "tiny-tabular" or GLOBAL[name].needs_module:
        assert hooks_left(tiny_registry.get(model_id).module) == 0
    other = service.explain_model(name, model_id, body_for(name, seed=1))
    assert {k: v for k, v in other.items() if k not in ("timing_ms",)} != strip


def test_methods_that_read_the_module_are_refused_on_remote_manifests(tiny_registry) -> None:
    for name, cls in GLOBAL.items():
        for modality in cls.modalities:
            manifest = tiny_registry.manifest(TINY[modality]).model_copy(update={"remote": object()})
            refused = cls.refusal(manifest) is not None
            assert refused == (cls.needs_module or (name == "normlime" and modality is Modality.IMAGE)), name


def test_bad_requests_are_refused_before_they_run(service: ExplanationService) -> None:
    def code(method: str, model_id: str, body: dict, error: type = InvalidInput) -> str:
        with pytest.raises(error) as err:
            service.prepare_global(method, model_id, body)
        return err.value.code

    image = body_for("feature_inversion")["input"]
    assert code("normlime", "tiny-tabular", {"input": {"features": [0, 0, 0, 0]}}) == "input_not_accepted"
    assert code("activation_maximisation", "tiny-image", {"inputs": [image]}) == "samples_not_accepted"
    assert code("feature_inversion", "tiny-image", {}) == "input_required"
    assert code("normlime", "tiny-tabular", {"inputs": []}) == "empty_samples"
    assert code("normlime", "tiny-text", {"inputs": [{"text": "good"}] * 4097}) == "too_many_samples"
    mixed = {"inputs": [{"text": "good"}, {"features": [1, 2, 3, 4]}]}
    assert code("normlime", "tiny-text", mixed) == "wrong_input_kind"
    assert code("activation_maximisation", "tiny-image", {"params": {"layer": "nope"}}, InvalidParams)
    assert code("activation_maximisation", "tiny-image", {"params": {"layer": "0.3", "channel": 8}},
                InvalidParams) == "invalid_params"
    assert code("activation_maximisation", "tiny-image", {"params": {"layer": "0.3", "channel": 7}, "target": 9},
                InvalidTarget) == "invalid_target"
    assert code("feature_inversion", "tiny-image", {"input": image, "params": {"layer": "0.9"}}, InvalidParams)
    with pytest.raises(WrongScope):
        service.prepare_global("lime", "tiny-image", {})
    with pytest.raises(WrongScope):
        service.prepare("normlime", "tiny-tabular", {"features": [0, 0, 0, 0]}, None)


def test_a_bundle_without_a_sample_set_needs_one_sent(tiny_dir, tmp_path) -> None:
    from tests.bundles import make_propagation_bundles

    make_propagation_bundles(tmp_path, tiny_dir)
    service = ExplanationService(ModelRegistry(tmp_path, device="cpu"))
    with pytest.raises(InvalidInput) as err:
        service.prepare_global("normlime", "tiny-image-bare", {})
    assert err.value.code == "no_samples"
    image = body_for("feature_inversion")["input"]
    prepared = service.prepare_global("normlime", "tiny-image-bare", {"inputs": [image, image]})
    assert prepared.samples is not None and len(prepared.samples) == 2
