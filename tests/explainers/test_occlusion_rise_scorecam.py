"""Occlusion, RISE and Score-CAM: against Captum / pytorch-grad-cam / brute force, and on real shapes."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from captum.attr import Occlusion as CaptumOcclusion
from scipy.ndimage import binary_dilation

import explainers.methods.gradcam
import explainers.methods.occlusion
import explainers.methods.rise
import explainers.methods.scorecam  # noqa: F401
from explainers.errors import InvalidParams
from explainers.methods import get_method
from explainers.methods.rise import BLOCK, RandomMasks
from explainers.models.handle import LocalModel, RawInput
from explainers.params import parse_params
from tests.explainers.conftest import raw_for

IMAGE_CASES = [("tiny", "tiny-image", 5, 3, "black"), ("tiny", "tiny-image", 4, 4, "mean"),
               ("resnet", "resnet18", 16, 8, "zero"), ("demo", "shapes-cnn", 8, 4, "blur"),
               ("demo", "shapes-cnn", 12, 5, "white")]


@pytest.fixture
def load(request: pytest.FixtureRequest):
    def _load(where: str, model_id: str) -> LocalModel:
        return request.getfixturevalue(f"{where}_registry").get(model_id)
    return _load


def run(name: str, model: LocalModel, raw: RawInput, target: int | None = None, progress=None, **params):
    cls = get_method(name)
    return cls().explain(model, raw, parse_params(cls.Params, params), target=target, progress=progress)


def target_prob(model: LocalModel, batch: torch.Tensor, target: int) -> torch.Tensor:
    with torch.inference_mode():
        return model.module(batch).softmax(-1)[:, target]


@pytest.mark.parametrize("where,model_id,window,stride,baseline", IMAGE_CASES)
def test_image_occlusion_matches_captum(load, where, model_id, window, stride, baseline):
    model = load(where, model_id)
    raw = raw_for(model, 1)
    inputs = model.prepare(raw)
    ours = run("occlusion", model, raw, window=window, stride=stride, baseline=baseline, batch_size=13)
    fill = inputs.x.mean(dim=(2, 3), keepdim=True).expand_as(inputs.x) if baseline == "mean" \
        else inputs.baseline(baseline)
    channels = inputs.x.shape[1]
    ref = CaptumOcclusion(lambda t: model.module(t).softmax(-1)).attribute(
        inputs.x, sliding_window_shapes=(channels, window, window), strides=(channels, stride, stride),
        baselines=fill, target=ours.target.index, perturbations_per_eval=16)
    np.testing.assert_allclose(ours.attribution, ref[0, 0].numpy(), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(ref[0, 0].numpy(), ref[0, -1].numpy())


@pytest.mark.parametrize("where,model_id", [("tiny", "tiny-text"), ("demo", "sentiment-cnn")])
def test_text_occlusion_deletes_tokens_like_brute_force(load, where, model_id):
    model = load(where, model_id)
    raw = raw_for(model, 0)
    ids = model.prepare(raw).native
    length = ids.shape[1]
    for window, stride in [(1, 1), (2, 1), (3, 2)]:
        ours = run("occlusion", model, raw, window_tokens=window, stride_tokens=stride, batch_size=2)
        t = ours.target.index
        p0 = float(target_prob(model, ids, t)[0])
        starts = sorted({min(s, length - window) for s in range(0, length - window + stride, stride)})
        total, count = np.zeros(length), np.zeros(length)
        for s in starts:
            kept = torch.cat([ids[:, :s], ids[:, s + window:]], 1)
            total[s:s + window] += p0 - float(target_prob(model, kept, t)[0])
            count[s:s + window] += 1
        np.testing.assert_allclose(ours.attribution, total / count, rtol=1e-5, atol=1e-7)
        assert ours.details["window"] == window and ours.details["model_evaluations"] == len(starts) + 1


def test_single_token_text_is_replaced_by_padding(tiny_registry):
    model = tiny_registry.get("tiny-text")
    ours = run("occlusion", model, RawInput(text="great"))
    ids = model.prepare(RawInput(text="great")).native
    t = ours.target.index
    expected = target_prob(model, ids, t) - target_prob(model, torch.zeros_like(ids), t)
    np.testing.assert_allclose(ours.attribution, expected.numpy(), rtol=1e-5)
    assert "pad" in ours.details["occlusion"]


@pytest.mark.parametrize("where,model_id", [("tiny", "tiny-tabular"), ("demo", "breast-cancer-mlp")])
def test_tabular_occlusion_matches_brute_force(load, where, model_id):
    model = load(where, model_id)
    raw = raw_for(model, 2)
    bg = model.background
    ours = run("occlusion", model, raw, n_background=len(bg), batch_size=50)
    x = torch.tensor(raw.features, dtype=torch.float32)[None]
    t = ours.target.index
    p0 = float(target_prob(model, x, t)[0])
    expected = []
    for i in range(bg.shape[1]):
        rows = x.repeat(len(bg), 1)
        rows[:, i] = torch.from_numpy(bg[:, i])
        expected.append(p0 - float(target_prob(model, rows, t).mean()))
    np.testing.assert_allclose(ours.attribution, expected, rtol=1e-4, atol=1e-6)
    smaller = run("occlusion", model, raw, n_background=5, seed=3)
    assert smaller.details["n_background"] == 5


@pytest.mark.parametrize("name,modality_model,params", [
    ("occlusion", "tiny-image", {"window": 4, "stride": 2}), ("occlusion", "tiny-text", {}),
    ("occlusion", "tiny-tabular", {}), ("rise", "tiny-image", {"n_masks": 100}), ("scorecam", "tiny-image", {})])
def test_progress_grows_from_zero_to_one(tiny_registry, name, modality_model, params):
    model = tiny_registry.get(modality_model)
    seen: list[float] = []
    run(name, model, raw_for(model, 0), progress=seen.append, batch_size=3, **params)
    assert len(seen) >= 2 and seen[0] < 0.5 and seen[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(seen, seen[1:]))


def test_occlusion_rejects_a_stride_beyond_its_window():
    cls = get_method("occlusion")
    for bad in [{"window": 4, "stride": 5}, {"window_tokens": 1, "stride_tokens": 2}, {"window": 0}]:
        with pytest.raises(InvalidParams):
            parse_params(cls.Params, bad)


def test_rise_masks_are_bilinear_upsampled_shifted_crops_independent_of_the_range_asked():
    cells, size = 5, (21, 30)
    masks = RandomMasks(7, cells, 0.3, size)
    everything = masks(0, BLOCK + 40)
    np.testing.assert_array_equal(torch.cat([masks(0, 100), masks(100, BLOCK + 3), masks(BLOCK + 3, BLOCK + 40)]),
                                  everything)
    grids, shifts = masks._block(1)
    up = F.interpolate(grids[:3, None], size=(6 * 5, 6 * 6), mode="bilinear", align_corners=False)[:, 0]
    for i in range(3):
        dy, dx = shifts[i].tolist()
        assert 0 <= dy < 5 and 0 <= dx < 6
        np.testing.assert_allclose(everything[BLOCK + i], up[i, dy:dy + 21, dx:dx + 30], atol=1e-6)
    assert everything.min() >= 0 and everything.max() <= 1
    assert abs(float(everything.mean()) - 0.3) < 0.05


def test_rise_is_the_mask_weighted_mean_of_probabilities(tiny_registry):
    model = tiny_registry.get("tiny-image")
    raw = raw_for(model, 0)
    ours = run("rise", model, raw, n_masks=40, cell_size=4, p_keep=0.4, seed=9, fill="black")
    x = model.prepare(raw).x
    masks = RandomMasks(9, 4, 0.4, (16, 16))(0, 40)
    black = model.normalize(torch.zeros_like(x))
    probs = target_prob(model, black + masks[:, None] * (x - black), ours.target.index)
    expected = (probs[:, None, None] * masks).sum(0) / (40 * 0.4)
    np.testing.assert_allclose(ours.attribution, expected.numpy(), rtol=1e-5, atol=1e-7)


def test_rise_is_seeded_and_independent_of_batch_size(tiny_registry):
    model = tiny_registry.get("tiny-image")
    raw = raw_for(model, 0)
    a = run("rise", model, raw, n_masks=300, seed=1, batch_size=64).attribution
    b = run("rise", model, raw, n_masks=300, seed=1, batch_size=64).attribution
    c = run("rise", model, raw, n_masks=300, seed=1, batch_size=7).attribution
    d = run("rise", model, raw, n_masks=300, seed=2, batch_size=64).attribution
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-7)
    assert not np.allclose(a, d)


@pytest.mark.parametrize("where,model_id", [("tiny", "tiny-image"), ("demo", "shapes-cnn")])
def test_scorecam_matches_pytorch_grad_cam(load, where, model_id):
    from pytorch_grad_cam import ScoreCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputSoftmaxTarget

    model = load(where, model_id)
    raw = raw_for(model, 0)
    ours = run("scorecam", model, raw, batch_size=32)
    x = model.prepare(raw).x
    module = copy.deepcopy(model.module).requires_grad_(True)
    layer = dict(module.named_modules())[model.manifest.cam_layer]
    with ScoreCAM(model=module, target_layers=[layer]) as cam:
        cam.batch_size = 32
        ref = cam(input_tensor=x, targets=[ClassifierOutputSoftmaxTarget(ours.target.index)])[0]
    assert ours.details["model_evaluations"] == ours.details["channels"] + 1  # a pass for the activations
    corr = np.corrcoef(ours.attribution.ravel(), ref.ravel())[0, 1]
    assert corr >= 0.99, corr


def test_scorecam_rejects_bad_layers_and_leaves_no_hook(tiny_registry):
    model = tiny_registry.get("tiny-image")
    for layer in ["no.such.layer", "2"]:  # unknown; a layer whose output is not a 4-D map
        with pytest.raises(InvalidParams):
            run("scorecam", model, raw_for(model), layer=layer)
    assert sum(len(m._forward_hooks) for m in model.module.modules()) == 0


def test_argmax_falls_on_the_object_for_rise_occlusion_and_gradcam(demo_registry):
    from demos.shapes import generate

    model = demo_registry.get("shapes-cnn")
    data = generate(30, seed=12345)
    methods = {"rise": {"n_masks": 600, "cell_size": 8, "batch_size": 200},
               "occlusion": {"window": 10, "stride": 5, "baseline": "mean", "batch_size": 144}, "gradcam": {}}
    hits = dict.fromkeys(methods, 0)
    for image, label, mask in zip(data.images, data.labels, data.masks):
        near = binary_dilation(mask, iterations=2)
        for name, params in methods.items():
            attribution = run(name, model, RawInput(image=image), target=int(label), **params).attribution
            hits[name] += bool(near.flat[int(np.argmax(attribution))])
    rates = {name: hit / len(data.labels) for name, hit in hits.items()}
    logging.getLogger(__name__).info("argmax-in-object rates: %s", rates)
    assert min(rates.values()) >= 0.7, rates
