"""Several inputs in shared batches: every batched method's maps equal its one-by-one maps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from explainers.base import Explainer
from explainers.batching import explain_batch
from explainers.methods import local_methods
from explainers.models.handle import RawInput
from explainers.params import parse_params

# Batches that straddle inputs (a batch holds rows of two inputs), and small counts for speed.
PARAMS: dict[str, dict[str, Any]] = {
    "integrated_gradients": {"n_steps": 7, "batch_size": 5},
    "smoothgrad": {"n_samples": 6, "batch_size": 4, "nt_type": "vargrad"},
    "occlusion": {"window": 4, "stride": 3, "batch_size": 10, "baseline": "mean"},
}
BATCHED = sorted(name for name, cls in local_methods().items() if cls.batch_key is not Explainer.batch_key)
TRANSFORMER_ONLY = {"transformer_attribution"}  # explains transformers only: on the tiny ViT below


def _images(sizes: list[tuple[int, int]], seed: int = 0) -> list[RawInput]:
    rng = np.random.default_rng(seed)
    return [RawInput(image=rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)) for h, w in sizes]


def _compare(method: str, model: Any, raws: list[RawInput], *, batched: int, params: dict[str, Any] | None = None,
             target: int | str | None = None) -> None:
    cls = local_methods()[method]
    p = parse_params(cls.Params, params if params is not None else PARAMS.get(method, {}))
    together = explain_batch(cls(), model, raws, p, target=target, top_k=3)
    assert len(together) == len(raws)
    for raw, got in zip(raws, together):
        alone = cls().explain(model, raw, p, target=target, top_k=3)
        for a, b in zip([got.target, *got.predictions], [alone.target, *alone.predictions], strict=True):
            assert (a.index, a.label) == (b.index, b.label) and a.score == pytest.approx(b.score, rel=1e-5)
        assert got.attribution.shape == alone.attribution.shape
        np.testing.assert_allclose(got.attribution, alone.attribution, rtol=1e-4, atol=1e-6 * (
            1 + float(np.abs(alone.attribution).max())))
        assert got.details["batched"] == {"inputs": batched}
        assert got.details.get("model_evaluations") == alone.details.get("model_evaluations")
        rest = {k: v for k, v in got.details.items() if k != "batched"}
        assert rest.keys() == alone.details.keys()


def test_the_batched_methods_are_the_gradient_cam_and_occlusion_ones() -> None:
    assert {"saliency", "input_x_gradient", "integrated_gradients", "smoothgrad", "gradcam", "gradcam++",
            "layercam", "occlusion"} <= set(BATCHED)


@pytest.mark.parametrize("method", sorted(set(BATCHED) - TRANSFORMER_ONLY))
def test_batched_maps_equal_one_by_one(method: str, tiny_registry) -> None:
    """Images of three sizes resize to the model's input size and stack; each map equals its own call's."""
    model = tiny_registry.get("tiny-image")
    _compare(method, model, _images([(16, 16), (20, 28), (16, 16)]), batched=3)


@pytest.mark.parametrize("method", ["saliency", "gradcam", "integrated_gradients", "occlusion"])
def test_batched_maps_equal_one_by_one_on_a_resnet(method: str, resnet_registry) -> None:
    """A model with batch norm and residual blocks (eval mode: rows stay independent), a fixed target."""
    model = resnet_registry.get("resnet18")
    params = {"integrated_gradients": {"n_steps": 3, "batch_size": 4},
              "occlusion": {"window": 32, "stride": 32, "batch_size": 3}}.get(method, {})
    _compare(method, model, _images([(64, 64), (48, 80)], seed=1), batched=2, params=params, target=3)


@pytest.mark.parametrize("method", ["saliency", "integrated_gradients"])
def test_tabular_rows_batch(method: str, tiny_registry) -> None:
    model = tiny_registry.get("tiny-tabular")
    assert model.background is not None
    raws = [RawInput(features=model.background[i].astype(np.float64)) for i in range(3)]
    _compare(method, model, raws, batched=3)


def test_text_inputs_run_one_by_one(tiny_registry) -> None:
    """A text's forward closes over its own token ids: texts are not stacked, each is explained alone."""
    model = tiny_registry.get("tiny-text")
    words = [t for t in model.tokenizer.vocab[2:] if t.isalpha()]
    raws = [RawInput(text=" ".join(words[:3])), RawInput(text=" ".join(words[2:7]))]
    _compare("saliency", model, raws, batched=1)


def test_a_method_without_a_batched_form_runs_one_by_one(tiny_registry) -> None:
    model = tiny_registry.get("tiny-image")
    assert "guided_backprop" not in BATCHED
    _compare("guided_backprop", model, _images([(16, 16), (16, 16)]), batched=1)


def test_occlusion_with_a_budget_runs_one_by_one(tiny_registry) -> None:
    """A budget is spent input by input, so the inputs are not packed together."""
    model = tiny_registry.get("tiny-image")
    _compare("occlusion", model, _images([(16, 16), (16, 16)]), batched=1,
             params={"window": 4, "stride": 4, "max_evaluations": 10})


def test_progress_runs_over_the_inputs(tiny_registry) -> None:
    model = tiny_registry.get("tiny-image")
    seen: list[float] = []
    cls = local_methods()["integrated_gradients"]
    p = parse_params(cls.Params, {"n_steps": 8, "batch_size": 4})
    explain_batch(cls(), model, _images([(16, 16)] * 3), p, progress=seen.append)
    assert seen == sorted(seen) and seen[-1] == 1.0 and 0 < seen[0] < 1
    assert len(seen) >= 6  # one report per pass (24 path points, 4 a pass), then the group's end


@pytest.mark.parametrize("method", ["gradcam", "layercam", "transformer_attribution"])
def test_batched_token_methods_on_a_vision_transformer_equal_one_by_one(method: str, transformer_registry) -> None:
    model = transformer_registry.get("tiny-vit")
    _compare(method, model, _images([(32, 32), (40, 28), (32, 32)], seed=5), batched=3)
