"""Each gradient method against its reference implementation on the same model and input.

Captum for the gradient family and Guided Grad-CAM; pytorch-grad-cam for the CAM family.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from captum import attr as ca

from explainers.methods import get_method
from explainers.models.handle import LocalModel
from explainers.params import parse_params
from tests.explainers.conftest import raw_for

IMAGE_MODELS = [("tiny", "tiny-image"), ("resnet", "resnet18"), ("demo", "shapes-cnn")]
TEXT_MODELS = [("tiny", "tiny-text"), ("demo", "sentiment-cnn")]
TABULAR_MODELS = [("tiny", "tiny-tabular"), ("demo", "breast-cancer-mlp")]


@pytest.fixture
def load(request: pytest.FixtureRequest):
    def _load(where: str, model_id: str) -> LocalModel:
        return request.getfixturevalue(f"{where}_registry").get(model_id)
    return _load


def run(method_name: str, model: LocalModel, raw, **params):
    cls = get_method(method_name)
    return cls().explain(model, raw, parse_params(cls.Params, params))


def setup(model: LocalModel, seed: int = 0):
    raw = raw_for(model, seed)
    inputs = model.prepare(raw)
    return raw, inputs, inputs.x.clone()


def channels(t: torch.Tensor, how: str) -> np.ndarray:
    """The same reduction the service applies, on a reference attribution [1, ...]."""
    a = t.detach()[0]
    if a.dim() == 3:  # image [C, H, W]
        out = a.sum(0) if how == "sum" else a.abs().amax(0)
    elif a.dim() == 2:  # text [L, D]
        out = a.sum(-1) if how == "sum" else a.norm(dim=-1)
    else:
        out = a if how == "sum" else a.abs()
    return out.numpy()


def close(ours: np.ndarray, ref: np.ndarray, rtol: float = 1e-4, atol_frac: float = 1e-5) -> None:
    scale = float(np.abs(ref).max()) or 1.0
    np.testing.assert_allclose(ours, ref, rtol=rtol, atol=atol_frac * scale)


ALL_MODELS = IMAGE_MODELS + TEXT_MODELS + TABULAR_MODELS


@pytest.mark.parametrize("where,model_id", ALL_MODELS)
def test_saliency_and_input_x_gradient_match_captum(load, where, model_id):
    model = load(where, model_id)
    raw, inputs, x = setup(model)
    target = run("saliency", model, raw).target.index
    sal = ca.Saliency(inputs.forward).attribute(x, target=target, abs=True)
    ixg = ca.InputXGradient(inputs.forward).attribute(x.clone(), target=target)
    close(run("saliency", model, raw).attribution, channels(sal, "abs"))
    close(run("input_x_gradient", model, raw).attribution, channels(ixg, "sum"))


IG_CASES = [(w, m, r) for w, m in ALL_MODELS
            for r in (["gausslegendre"] if w == "resnet" else
                      ["gausslegendre", "riemann_trapezoid", "riemann_middle", "riemann_left"])]


@pytest.mark.parametrize("where,model_id,rule", IG_CASES)
def test_integrated_gradients_matches_captum_and_is_complete(load, where, model_id, rule):
    model = load(where, model_id)
    raw, inputs, x = setup(model)
    ours = run("integrated_gradients", model, raw, n_steps=40, method=rule, batch_size=7)
    baseline = inputs.baseline("default")
    ref, delta = ca.IntegratedGradients(inputs.forward).attribute(
        x, baselines=baseline, target=ours.target.index, n_steps=40, method=rule, return_convergence_delta=True)
    gap, diff = ours.details["completeness_gap"], ours.details["score_difference"]
    if rule == "riemann_trapezoid":
        # Captum's trapezoid weights are 1/n (halved at the ends) for points 1/(n-1) apart, so they
        # sum to (n-1)/n; ours are the textbook 1/(n-1) and sum to 1 (completeness below checks it).
        ref = ref * 40 / 39
    else:
        assert abs(gap + float(delta)) <= 1e-3 * abs(diff) + 1e-5  # Captum's delta is sum - difference: -gap
    close(ours.attribution, channels(ref, "sum"), rtol=1e-3, atol_frac=1e-3)
    if where != "resnet":  # a random-weight ResNet needs far more steps than 40 to be complete
        assert abs(gap) <= 0.05 * abs(diff) + 1e-3, (gap, diff)
    assert abs(float(ours.attribution.sum()) - ours.details["attribution_sum"]) <= 1e-3 * (abs(diff) + 1)


@pytest.mark.parametrize("where,model_id", TEXT_MODELS)
def test_text_methods_match_captum_layer_attribution_on_token_ids(load, where, model_id):
    """Independent of our embedding hook: Captum's layer methods on the token ids."""
    model = load(where, model_id)
    raw, inputs, _ = setup(model)
    assert model.tokenizer is not None and model.manifest.text is not None
    ids = torch.tensor([model.tokenizer.encode(inputs.tokens)])
    emb = model.layer(model.manifest.text.embedding_layer)
    ours = run("integrated_gradients", model, raw, n_steps=32)
    t = ours.target.index
    lig = ca.LayerIntegratedGradients(model.module, emb).attribute(
        ids, baselines=torch.full_like(ids, model.tokenizer.pad_id), target=t, n_steps=32)
    close(ours.attribution, channels(lig, "sum"), rtol=1e-3, atol_frac=1e-4)
    grads = ca.LayerGradientXActivation(model.module, emb, multiply_by_inputs=False).attribute(ids, target=t)
    close(run("saliency", model, raw).attribution, channels(grads, "abs"))
    gxa = ca.LayerGradientXActivation(model.module, emb).attribute(ids, target=t)
    close(run("input_x_gradient", model, raw).attribution, channels(gxa, "sum"))


@pytest.mark.parametrize("where,model_id", ALL_MODELS)
@pytest.mark.parametrize("nt_type", ["smoothgrad", "smoothgrad_sq", "vargrad"])
def test_smoothgrad_matches_captum_noise_tunnel_with_the_same_noise(load, where, model_id, nt_type):
    model = load(where, model_id)
    raw, inputs, x = setup(model)
    ours = run("smoothgrad", model, raw, n_samples=12, noise_level=0.1, seed=5, nt_type=nt_type, batch_size=5)
    torch.manual_seed(5)  # Captum draws from the global generator; ours from a generator seeded the same
    ref = ca.NoiseTunnel(ca.Saliency(inputs.forward)).attribute(
        x, nt_type=nt_type, nt_samples=12, stdevs=ours.details["sigma"], target=ours.target.index)
    close(ours.attribution, channels(ref, "abs"), rtol=1e-3, atol_frac=1e-4)


@pytest.mark.parametrize("where,model_id", IMAGE_MODELS)
@pytest.mark.parametrize("method,reference", [("guided_backprop", ca.GuidedBackprop),
                                              ("deconvnet", ca.Deconvolution)])
def test_modified_relu_backprop_matches_captum(load, where, model_id, method, reference):
    model = load(where, model_id)
    raw, inputs, x = setup(model)
    ours = run(method, model, raw)
    ref = reference(model.module).attribute(x, target=ours.target.index)
    close(ours.attribution, channels(ref, "sum"))


def cam_layer(model: LocalModel) -> torch.nn.Module:
    assert model.manifest.cam_layer is not None
    return model.layer(model.manifest.cam_layer)


@pytest.mark.parametrize("where,model_id", IMAGE_MODELS)
def test_gradcam_matches_captum_layer_gradcam(load, where, model_id):
    model = load(where, model_id)
    raw, inputs, x = setup(model)
    ours = run("gradcam", model, raw)
    low = ca.LayerGradCam(model.module, cam_layer(model)).attribute(
        x, target=ours.target.index, relu_attributions=True)
    ref = ca.LayerAttribution.interpolate(low, tuple(x.shape[-2:]), interpolate_mode="bilinear")
    close(ours.attribution, ref[0, 0].detach().numpy())


@pytest.mark.parametrize("where,model_id", IMAGE_MODELS)
def test_guided_gradcam_matches_captum(load, where, model_id):
    model = load(where, model_id)
    raw, inputs, x = setup(model)
    ours = run("guided_gradcam", model, raw, upsample="nearest")
    ref = ca.GuidedGradCam(model.module, cam_layer(model)).attribute(x, target=ours.target.index)
    close(ours.attribution, channels(ref, "sum"))


@pytest.mark.parametrize("where,model_id", IMAGE_MODELS)
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_cam_family_matches_pytorch_grad_cam(load, where, model_id, method):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    model = load(where, model_id)
    raw, inputs, x = setup(model)
    ours = run(method, model, raw)
    reference = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM}[method]
    module = copy.deepcopy(model.module).requires_grad_(True)  # the library backpropagates into weights
    name = model.manifest.cam_layer
    with reference(model=module, target_layers=[dict(module.named_modules())[name]]) as cam:
        ref = cam(input_tensor=x, targets=[ClassifierOutputTarget(ours.target.index)])[0]
    a, b = ours.attribution.ravel(), ref.ravel()
    if np.ptp(b) == 0:  # both must be flat (an all-zero CAM)
        assert np.ptp(a) <= 1e-6 * (np.abs(a).max() + 1e-12)
        return
    corr = np.corrcoef(a, b)[0, 1]
    assert corr >= 0.99, corr
