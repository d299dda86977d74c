"""Attention rollout, transformer attribution and the CAMs on token layers, each against a plain reference.

Rollout against the paper's formula in numpy on the attention of an explicit float64 forward of the ViT;
transformer attribution against the same forward, whose attention tensors keep their gradients, with the
paper's rule written out per head; Grad-CAM on a token layer against pytorch-grad-cam with its `reshape_transform`.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from explainers.errors import InvalidParams, MethodNotSupported
from explainers.methods import get_method
from explainers.methods._propagation import PropagationExplainer
from explainers.methods.transformer_attribution import batched_relevance
from explainers.models.handle import LocalModel, RawInput
from explainers.params import parse_params
from explainers.propagation.errors import UnsupportedModel
from explainers.serialize import decode_array
from tests.explainers.conftest import raw_for


def run(method: str, model: LocalModel, raw, **params):
    cls = get_method(method)
    return cls().explain(model, raw, parse_params(cls.Params, params))


@pytest.fixture(scope="module")
def vit(transformer_registry) -> LocalModel:
    return transformer_registry.get("tiny-vit")


@pytest.fixture(scope="module")
def text_transformer(transformer_registry) -> LocalModel:
    return transformer_registry.get("tiny-text-transformer")


# -- a plain forward of torchvision's VisionTransformer ---------------------------------------------------------
def plain_vit(module, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    """An explicit float64 forward of a torchvision ViT [B, 3, H, W] -> (per-layer attention [B, heads, N, N],
    each keeping its gradient, and the logits [B, K])."""
    sd = {k: v.detach().double() for k, v in module.state_dict().items()}
    p, hidden = module.patch_size, module.hidden_dim
    x = x.detach().double().requires_grad_(True)
    b = x.shape[0]
    ln = torch.nn.functional.layer_norm
    tokens = torch.nn.functional.conv2d(x, sd["conv_proj.weight"], sd["conv_proj.bias"], stride=p)
    tokens = tokens.flatten(2).transpose(1, 2)
    z = torch.cat([sd["class_token"].expand(b, 1, hidden), tokens], 1) + sd["encoder.pos_embedding"]
    n = z.shape[1]
    attentions = []
    for i, layer in enumerate(module.encoder.layers):
        pre = f"encoder.layers.encoder_layer_{i}."
        heads = layer.self_attention.num_heads
        d = hidden // heads
        h = ln(z, (hidden,), sd[pre + "ln_1.weight"], sd[pre + "ln_1.bias"], 1e-6)
        qkv = h @ sd[pre + "self_attention.in_proj_weight"].T + sd[pre + "self_attention.in_proj_bias"]
        q, k, v = (t.reshape(b, n, heads, d).transpose(1, 2) for t in qkv.chunk(3, -1))
        a = (q @ k.transpose(-1, -2) / d ** 0.5).softmax(-1)
        a.retain_grad()
        attentions.append(a)
        o = (a @ v).transpose(1, 2).reshape(b, n, hidden)
        z = z + o @ sd[pre + "self_attention.out_proj.weight"].T + sd[pre + "self_attention.out_proj.bias"]
        y = ln(z, (hidden,), sd[pre + "ln_2.weight"], sd[pre + "ln_2.bias"], 1e-6)
        y = torch.nn.functional.gelu(y @ sd[pre + "mlp.0.weight"].T + sd[pre + "mlp.0.bias"])
        z = z + y @ sd[pre + "mlp.3.weight"].T + sd[pre + "mlp.3.bias"]
    logits = ln(z[:, 0], (hidden,), sd["encoder.ln.weight"], sd["encoder.ln.bias"], 1e-6) @ sd["heads.head.weight"].T \
        + sd["heads.head.bias"]
    return attentions, logits


def numpy_rollout(attentions: list[np.ndarray], fusion: str, discard: float) -> np.ndarray:
    """Abnar & Zuidema's rollout of one input: fused heads, the lowest `discard` share zeroed (but the class
    token's self-attention), the identity added, rows renormalised, the layers multiplied."""
    n = attentions[0].shape[-1]
    joint = np.eye(n)
    for a in attentions:
        fused = {"mean": a[0].mean(0), "max": a[0].max(0), "min": a[0].min(0)}[fusion]
        flat = fused.flatten().copy()
        lowest = np.argsort(flat, kind="stable")[:int(n * n * discard)]
        flat[lowest[lowest != 0]] = 0.0
        fused = flat.reshape(n, n) + np.eye(n)
        joint = (fused / fused.sum(1, keepdims=True)) @ joint
    return joint[0, 1:]


@pytest.mark.parametrize("fusion,discard", [("mean", 0.0), ("max", 0.0), ("min", 0.0), ("mean", 0.5),
                                            ("max", 0.9)])
def test_rollout_equals_a_numpy_implementation_of_the_paper(vit, fusion, discard):
    raw = raw_for(vit, seed=3)
    ours = run("attention_rollout", vit, raw, head_fusion=fusion, discard_ratio=discard)
    attentions, logits = plain_vit(vit.module, vit.prepare(raw).x)
    with torch.no_grad():
        np.testing.assert_allclose(vit.module(vit.prepare(raw).x).double().numpy(), logits.detach().numpy(),
                                   rtol=1e-4, atol=1e-5)
    ref = numpy_rollout([a.detach().numpy() for a in attentions], fusion, discard).reshape(4, 4)
    low = np.asarray(ours.details["map_shape"])
    assert list(low) == [4, 4] and ours.details["layers"] == 2 and ours.details["heads"] == 2
    # the map at the image size is the 4x4 grid upsampled: compare at the grid, sampled at patch centres
    ours_grid = _grid_of(run_low("attention_rollout", vit, raw, head_fusion=fusion, discard_ratio=discard))
    np.testing.assert_allclose(ours_grid, ref, rtol=1e-4, atol=1e-7)


def run_low(method: str, model: LocalModel, raw, **params) -> torch.Tensor:
    """A method's map at the model's own resolution (before the base resizes it to the image)."""
    from explainers.base import Context

    cls = get_method(method)
    p = parse_params(cls.Params, params)
    with model.lock:
        ctx = Context(model, model.prepare(raw), None, p, 5)
        return cls()._attribute(ctx, p).values.detach()


def _grid_of(t: torch.Tensor) -> np.ndarray:
    return t.double().numpy()


# -- transformer attribution -------------------------------------------------------------------------------------
def plain_chefer(module, x: torch.Tensor, target: int) -> np.ndarray:
    """Chefer et al.'s rule on one input, from the explicit forward whose attention keeps its gradient."""
    attentions, logits = plain_vit(module, x)
    n = attentions[0].shape[-1]
    logits[0, target].backward()
    r = torch.eye(n, dtype=torch.float64)
    for a in attentions:  # Ā = E_h[(∇A ⊙ A)+], R = R + Ā R
        heads = a.shape[1]
        bar = sum(torch.clamp(a.grad[0, h] * a[0, h].detach(), min=0) for h in range(heads)) / heads
        r = r + bar @ r
    return r[0, 1:].numpy()


def test_transformer_attribution_equals_the_papers_equations(vit):
    for seed in range(3):
        raw = raw_for(vit, seed=seed)
        low = run_low("transformer_attribution", vit, raw)
        target = run("transformer_attribution", vit, raw).target.index
        ref = plain_chefer(vit.module, vit.prepare(raw).x, target).reshape(4, 4)
        assert np.ptp(ref) > 1e-3 * ref.max() > 0  # a map that says something
        np.testing.assert_allclose(low.double().numpy(), ref, rtol=1e-4, atol=1e-6)


def test_transformer_attribution_of_a_batch_equals_one_call_per_input(vit):
    raws = [raw_for(vit, seed=s) for s in range(5)]
    x = torch.cat([vit.prepare(r).x for r in raws])
    targets = torch.tensor([0, 1, 2, 1, 0])
    from explainers.attention import attention_modules

    modules = attention_modules(vit.module)
    batch = batched_relevance(vit.module, modules, x, targets)
    for i in range(len(raws)):
        one = batched_relevance(vit.module, modules, x[i:i + 1], targets[i:i + 1])
        torch.testing.assert_close(batch[i:i + 1], one, rtol=1e-5, atol=1e-6)
        ref = plain_chefer(vit.module, x[i:i + 1], int(targets[i]))
        np.testing.assert_allclose(batch[i, 0, 1:].double().numpy(), ref, rtol=1e-4, atol=1e-6)


# -- CAMs on a token layer ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("method", ["gradcam", "gradcam++", "layercam"])
def test_cam_on_a_token_layer_matches_pytorch_grad_cam_with_reshape_transform(vit, method):
    from pytorch_grad_cam import GradCAM, GradCAMPlusPlus, LayerCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    def reshape_transform(t: torch.Tensor) -> torch.Tensor:
        return t[:, 1:, :].reshape(t.size(0), 4, 4, t.size(2)).permute(0, 3, 1, 2)

    reference = {"gradcam": GradCAM, "gradcam++": GradCAMPlusPlus, "layercam": LayerCAM}[method]
    module = copy.deepcopy(vit.module).requires_grad_(True)  # the library backpropagates into weights
    layer = dict(module.named_modules())[vit.manifest.cam_layer]
    compared = 0
    for seed in range(2):
        raw = raw_for(vit, seed=seed)
        for target in range(3):
            ours = _run_target(method, vit, raw, target)
            assert ours.details["cam_shape"] == [4, 4]
            with reference(model=module, target_layers=[layer], reshape_transform=reshape_transform) as cam:
                ref = cam(input_tensor=vit.prepare(raw).x, targets=[ClassifierOutputTarget(target)])[0]
            if np.ptp(ref) == 0:  # an all-zero CAM (every weighted channel negative): ours is flat too
                assert np.ptp(ours.attribution) <= 1e-6 * (np.abs(ours.attribution).max() + 1e-12)
                continue
            corr = np.corrcoef(ours.attribution.ravel(), ref.ravel())[0, 1]
            assert corr >= 0.99, (seed, target, corr)
            compared += 1
    assert compared >= 3


def _run_target(method: str, model: LocalModel, raw, target: int):
    cls = get_method(method)
    return cls().explain(model, raw, parse_params(cls.Params, {}), target=target)


def test_scorecam_reads_a_token_layer_on_its_grid(vit):
    ours = run("scorecam", vit, raw_for(vit, seed=1))
    assert ours.details["cam_shape"] == [4, 4] and ours.details["channels"] == 16
    assert ours.attribution.shape == (32, 32) and np.isfinite(ours.attribution).all()


def test_a_reshape_that_does_not_fit_the_tokens_is_a_coded_error(vit):
    with pytest.raises(InvalidParams) as err:
        run("gradcam", vit, raw_for(vit), grid=[5, 5])
    assert err.value.code == "invalid_reshape" and err.value.details["tokens"] == 17
    with pytest.raises(InvalidParams) as err:
        run("scorecam", vit, raw_for(vit), prefix_tokens=3)
    assert err.value.code == "invalid_reshape"
    # the same layout, said explicitly, is the default's
    same = run("gradcam", vit, raw_for(vit), grid=[4, 4], prefix_tokens=1)
    np.testing.assert_array_equal(same.attribution, run("gradcam", vit, raw_for(vit)).attribution)


def test_transformer_methods_refuse_models_without_attention(tiny_registry):
    model = tiny_registry.get("tiny-image")
    for method in ("attention_rollout", "transformer_attribution"):
        with pytest.raises(MethodNotSupported):
            run(method, model, raw_for(model))


def test_no_hook_is_left_behind_and_the_fast_path_is_untouched(vit):
    modules = [m for m in vit.module.modules() if isinstance(m, torch.nn.MultiheadAttention)]
    for method in ("attention_rollout", "transformer_attribution", "gradcam"):
        run(method, vit, raw_for(vit))
        assert all(not m._forward_hooks and not m._forward_pre_hooks for m in modules)
        assert all(not m._forward_hooks for m in vit.module.modules())


def test_explaining_lays_out_differentiated_batches_and_changes_no_value(vit):
    """Within `explaining()`, a batch's attention inputs take the [N, B, E] memory layout (the fast input
    projection); outputs and input gradients are those of the plain forward, and inference is untouched."""
    x = torch.randn(3, *vit.prepare(raw_for(vit)).x.shape[1:], generator=torch.Generator().manual_seed(0))
    attention = next(m for m in vit.module.modules() if isinstance(m, torch.nn.MultiheadAttention))
    seen: list[torch.Tensor] = []

    def run_seen(grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Outputs and input gradient of a forward; what the attention module was called with (the hook
        registered last runs after `explaining()`'s)."""
        handle = attention.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
        try:
            if not grad:
                with torch.inference_mode():
                    return vit.run(x), None
            xi = x.clone().requires_grad_(True)
            out = vit.run(xi)
            return out.detach(), torch.autograd.grad(out[:, 1].sum(), xi)[0]
        finally:
            handle.remove()

    plain = run_seen(grad=True)
    with vit.explaining():
        folded = run_seen(grad=True)
        run_seen(grad=False)
    assert seen[0].is_contiguous() and not seen[1].is_contiguous() and seen[1].transpose(0, 1).is_contiguous()
    assert seen[2].is_contiguous()  # inference: as served
    for a, b in zip(plain, folded):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert not attention._forward_pre_hooks


# -- the text transformer ----------------------------------------------------------------------------------------
def test_text_transformer_maps_have_one_value_per_word(text_transformer):
    raw = raw_for(text_transformer, seed=2)
    n_words = len(text_transformer.prepare(raw).tokens)
    for method in ("attention_rollout", "transformer_attribution"):
        out = run(method, text_transformer, raw)
        assert out.attribution.shape == (n_words,) and out.details["tokens"] == n_words + 1
        assert (out.attribution >= 0).all() and out.attribution.max() > 0


def test_every_text_method_explains_the_text_transformer_per_token(transformer_registry):
    from explainers.service import ExplanationService

    service = ExplanationService(transformer_registry)
    manifest = transformer_registry.manifest("tiny-text-transformer")
    methods = service.methods_for(manifest)
    assert {"attention_rollout", "transformer_attribution", "saliency", "integrated_gradients", "lime",
            "kernel_shap", "occlusion"} <= set(methods)
    text = "the movie was not good ."
    for method in methods:
        if issubclass(get_method(method), PropagationExplainer):  # rules for layer norm and attention: not yet
            with pytest.raises(UnsupportedModel) as err:
                service.explain(method, "tiny-text-transformer", {"text": text})
            assert "LayerNorm" in err.value.message
            continue
        body = service.explain(method, "tiny-text-transformer", {"text": text})
        values = decode_array(body["attribution"])
        assert values.shape == (6,) and np.isfinite(values).all() and np.abs(values).max() > 0, method


def test_the_sentiment_transformer_attends_to_the_sentiment_words(demo_registry):
    """On the shipped demo, both attention maps put on the lexicon words at least 1.5 times the share of their
    mass that those words have of the tokens (rollout's top token is one of them in most reviews)."""
    from demos import sentiment

    model = demo_registry.get("sentiment-transformer")
    lexicon = set(sentiment.POSITIVE_WORDS) | set(sentiment.NEGATIVE_WORDS)
    examples = sentiment.generate(40, 77)
    for method in ("attention_rollout", "transformer_attribution"):
        mass, share, top = [], [], 0
        for ex in examples:
            out = run(method, model, RawInput(text=ex.text))
            on = np.array([t in lexicon for t in out.tokens])
            mass.append(out.attribution[on].sum() / out.attribution.sum())
            share.append(on.mean())
            top += bool(on[int(np.argmax(out.attribution))])
        assert np.mean(mass) >= 1.5 * np.mean(share), (method, np.mean(mass), np.mean(share))
        if method == "attention_rollout":
            assert top >= 0.7 * len(examples), top


def test_patches_segmentation_follows_the_patch_grid(vit, tiny_registry):
    out = run("kernel_shap", vit, raw_for(vit), segmentation="patches", n_samples=200)
    assert out.details["n_features"] == 16
    cells = out.attribution.reshape(4, 8, 4, 8)  # every 8x8 patch holds one value
    assert np.allclose(cells, cells[:, :1, :, :1])
    cnn = tiny_registry.get("tiny-image")
    with pytest.raises(InvalidParams) as err:
        run("lime", cnn, raw_for(cnn), segmentation="patches")
    assert err.value.code == "no_patch_grid"
