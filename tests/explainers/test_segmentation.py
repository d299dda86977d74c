"""Segmentation targets: each method explains a class's logits summed over a region, checked against the same
score computed directly on the raw module (shapes-seg and a random LR-ASPP)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from explainers.context import Context
from explainers.errors import InvalidParams, InvalidTarget, ServiceError
from explainers.methods import get_method
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService
from tests.explainers.conftest import REPO_MODELS


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    from demos.torchvision_bundle import make_bundle

    root = tmp_path_factory.mktemp("seg")
    shutil.copytree(REPO_MODELS / "shapes-seg", root / "shapes-seg")
    shutil.copytree(REPO_MODELS / "shapes-cnn", root / "shapes-cnn")
    make_bundle("lraspp_mobilenet_v3_large", root / "lraspp", size=64, num_classes=4, seed=0)
    return ModelRegistry(root, device="cpu")


def _sample(model_id: str) -> tuple[np.ndarray, np.ndarray, int]:
    data = np.load(REPO_MODELS / "shapes-seg" / "samples.npz")
    return data["images"][1], data["masks"][1], int(data["labels"][1]) + 1


def _case(registry: ModelRegistry, model_id: str) -> tuple[LocalModel, np.ndarray, np.ndarray, int]:
    model = registry.get(model_id)
    assert isinstance(model, LocalModel)
    image, mask, label = _sample(model_id)
    return model, image, mask, label if model_id == "shapes-seg" else 2


def _direct(model: LocalModel, image: np.ndarray, mask: np.ndarray, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(x, d score / dx) with score = sum over the region of class k's logits, by autograd on the raw module."""
    x = model.image_tensor(image).clone().requires_grad_(True)
    out = model.module(x)
    out = out["out"] if isinstance(out, dict) else out
    score = out[0, k][torch.from_numpy(mask)].sum()
    (grad,) = torch.autograd.grad(score, x)
    return x.detach(), grad


def _explain(model: LocalModel, method: str, image: np.ndarray, mask: np.ndarray, k: int, **params) -> np.ndarray:
    cls = get_method(method)
    expl = cls().explain(model, RawInput(image=image, region=mask), cls.Params(**params), target=k)
    assert expl.target.index == k and expl.details["explained"] == "logits"
    return expl.attribution


@pytest.mark.parametrize("model_id", ["shapes-seg", "lraspp"])
def test_gradient_maps_are_the_gradient_of_the_summed_region_logits(registry, model_id):
    model, image, mask, k = _case(registry, model_id)
    x, grad = _direct(model, image, mask, k)
    saliency = _explain(model, "saliency", image, mask, k)
    np.testing.assert_allclose(saliency, grad[0].abs().amax(0).numpy(), rtol=1e-4, atol=1e-6)
    ixg = _explain(model, "input_x_gradient", image, mask, k)
    np.testing.assert_allclose(ixg, (x * grad)[0].sum(0).numpy(), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("model_id", ["shapes-seg"])
def test_integrated_gradients_completes_to_the_summed_region_logit(registry, model_id):
    model, image, mask, k = _case(registry, model_id)

    def score(img: np.ndarray) -> float:
        with torch.no_grad():
            out = model.module(model.image_tensor(img))
            out = out["out"] if isinstance(out, dict) else out
            return float(out[0, k][torch.from_numpy(mask)].sum())

    ig = _explain(model, "integrated_gradients", image, mask, k, n_steps=128)
    gap = score(image) - score(np.zeros_like(image))  # the black baseline
    assert abs(float(ig.sum()) - gap) <= 0.05 * abs(gap) + 1e-3


@pytest.mark.parametrize("model_id", ["shapes-seg", "lraspp"])
def test_gradcam_is_seg_grad_cam(registry, model_id):
    model, image, mask, k = _case(registry, model_id)
    layer = model.layer(model.manifest.cam_layer or "")
    held: dict[str, torch.Tensor] = {}
    handle = layer.register_forward_hook(lambda _m, _i, o: held.__setitem__("a", o))
    try:
        x = model.image_tensor(image).clone().requires_grad_(True)
        out = model.module(x)
        out = out["out"] if isinstance(out, dict) else out
        score = out[0, k][torch.from_numpy(mask)].sum()
        (grad,) = torch.autograd.grad(score, held["a"])
    finally:
        handle.remove()
    weights = grad.mean(dim=(2, 3), keepdim=True)
    cam = F.relu((weights * held["a"]).sum(1))[0].detach()
    cam = F.interpolate(cam[None, None], size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0].numpy()
    got = _explain(model, "gradcam", image, mask, k)
    assert cam.max() > 0
    np.testing.assert_allclose(got / got.max(), cam / cam.max(), atol=1e-4)


def test_a_versus_region_target_is_the_gradient_of_the_difference_of_the_region_sums(registry):
    model, image, mask, k = _case(registry, "shapes-seg")
    other = 0 if k != 0 else 1
    cls = get_method("input_x_gradient")
    expl = cls().explain(model, RawInput(image=image, region=mask), cls.Params(), target=k, versus=other)
    x = model.image_tensor(image).requires_grad_(True)
    out = model.module(x)[0]
    inside = torch.from_numpy(mask)
    (grad,) = torch.autograd.grad(out[k][inside].sum() - out[other][inside].sum(), x)
    np.testing.assert_allclose(expl.attribution, (grad * x).sum(1)[0].detach().numpy(), rtol=1e-4, atol=1e-4)
    assert expl.details["versus"]["index"] == other


def test_black_box_scores_are_the_summed_region_logits_of_the_perturbed_inputs(registry):
    model, image, mask, k = _case(registry, "shapes-seg")
    cls = get_method("occlusion")
    inputs = model.prepare(RawInput(image=image, region=mask))
    ctx = Context(model, inputs, k, cls.Params(), top_k=3)
    rng = np.random.default_rng(0)
    batch = inputs.x + torch.from_numpy(rng.normal(size=(3, *inputs.x.shape[1:])).astype(np.float32))
    with torch.no_grad():
        direct = model.module(batch)[:, k][:, torch.from_numpy(mask)].sum(1)
    torch.testing.assert_close(ctx.target_probabilities(batch, 2), direct, rtol=1e-4, atol=1e-3)
    # the predictions are each class's share of the region's pixels, as the model labels them
    with torch.no_grad():
        labelled = model.module(inputs.x)[0].argmax(0)[torch.from_numpy(mask)]
    assert ctx.target_prediction is not None or ctx.target() == k
    assert ctx.target_prediction is not None
    assert ctx.target_prediction.score == pytest.approx(float((labelled == k).float().mean()))


@pytest.mark.parametrize("method,params", [("occlusion", {"window": 16, "stride": 16}),
                                           ("rise", {"n_masks": 64, "batch_size": 32}),
                                           ("kernel_shap", {"n_samples": 64}), ("lime", {"n_samples": 64})])
def test_black_box_methods_run_on_a_segmentation_target(registry, method, params):
    model, image, mask, k = _case(registry, "shapes-seg")
    cls = get_method(method)
    expl = cls().explain(model, RawInput(image=image, region=mask), cls.Params(**params), target=k)
    assert expl.attribution.shape == image.shape[:2] and np.isfinite(expl.attribution).all()
    assert expl.details["explained"] == "logits" and float(np.abs(expl.attribution).max()) > 0


def test_kernel_shap_explains_the_summed_region_logit_with_efficiency(registry):
    model, image, mask, k = _case(registry, "shapes-seg")
    cls = get_method("kernel_shap")
    expl = cls().explain(model, RawInput(image=image, region=mask), cls.Params(n_samples=128), target=k)
    with torch.no_grad():
        direct = float(model.module(model.image_tensor(image))[0, k][torch.from_numpy(mask)].sum())
    assert expl.details["score"] == pytest.approx(direct, rel=1e-4, abs=1e-3)
    assert abs(expl.details["efficiency_gap"]) <= 1e-3 * max(1.0, abs(direct - expl.details["base_value"]))


def test_no_region_sums_over_the_pixels_of_the_class(registry):
    model, image, _, k = _case(registry, "shapes-seg")
    inputs = model.prepare(RawInput(image=image))
    with torch.no_grad():
        out = model.module(inputs.x)
        own = out[0].argmax(0) == k
        assert bool(own.any())
        torch.testing.assert_close(inputs.forward(inputs.x)[0, k], out[0, k][own].sum())


def test_bad_segmentation_targets_are_coded(registry, tmp_path):
    import base64
    import io

    from PIL import Image

    service = ExplanationService(registry)
    image, _, k = _sample("shapes-seg")
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    payload = {"image": base64.b64encode(buf.getvalue()).decode()}
    for target, code in [({"class": k, "box": [50, 50, 80, 80]}, "invalid_region"),
                         ({"class": k, "box": [10, 10, 10, 20]}, "invalid_region"),
                         ({"class": 99, "box": [0, 0, 8, 8]}, "invalid_target"),
                         ({"class": k, "versus": k}, "invalid_target")]:
        with pytest.raises(ServiceError) as err:
            service.explain("saliency", "shapes-seg", payload, target=target)
        assert err.value.code == code and 400 <= err.value.status < 500, target
        with pytest.raises(ServiceError) as err:  # a job's request is checked before it is queued
            service.check("occlusion", "shapes-seg", payload, None, target)
        assert err.value.code == code
    with pytest.raises(InvalidTarget):  # a region on a classifier
        service.explain("saliency", "shapes-cnn", payload, target={"class": 0, "box": [0, 0, 8, 8]})
    with pytest.raises(InvalidParams):  # a softmax over summed logits means nothing
        service.explain("occlusion", "shapes-seg", payload, target={"class": k, "box": [0, 0, 32, 32]},
                        params={"score": "probabilities"})
    body = service.explain("saliency", "shapes-cnn", payload, target={"class": 1})  # the class alone: as `1`
    assert body["target"]["index"] == 1
    body = service.explain("gradcam", "shapes-seg", payload, target={"class": k, "box": [0, 0, 64, 64]})
    assert body["target"]["index"] == k and body["details"]["explained"] == "logits"


def test_the_bundle_maker_writes_segmentation_bundles(tmp_path: Path):
    from demos.torchvision_bundle import make_bundle
    from explainers.models.manifest import read_manifest

    manifest = read_manifest(make_bundle("fcn_resnet50", tmp_path / "fcn", size=64, num_classes=3))
    assert manifest.task == "segmentation" and manifest.output_key == "out" and manifest.cam_layer == "backbone.layer4"
    model = ModelRegistry(tmp_path, device="cpu").get("fcn")
    assert isinstance(model, LocalModel)
    image, mask, _ = _sample("fcn")
    x, grad = _direct(model, image, mask, 1)
    np.testing.assert_allclose(_explain(model, "saliency", image, mask, 1), grad[0].abs().amax(0).numpy(),
                               rtol=1e-4, atol=1e-7)
