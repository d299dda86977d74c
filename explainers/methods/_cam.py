"""The CAM family's shared loop: activations and gradients at one layer, then a weighting."""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.batching import Stack, image_key
from explainers.errors import InvalidParams
from explainers.hooks import capture_output, last_output
from explainers.params import P, Params
from explainers.targets import batched_vjp, digest
from explainers.token_grid import MAX_PREFIX, token_layout, tokens_to_grid
from explainers.types import Modality

LAYER_HELP = "module name of the CAM layer; default: the model's cam_layer"


class LayerParams(Params):
    """The layer a CAM reads, and how a token layer's output [B, N, C] becomes feature maps."""

    layer: str | None = Field(None, max_length=200, description=LAYER_HELP)
    prefix_tokens: int | None = Field(None, ge=0, le=MAX_PREFIX, description="token layers: tokens dropped "
                                      "before the grid (the class token); default: the manifest's, else inferred")
    grid: tuple[int, int] | None = Field(None, description="token layers: (rows, columns) of the patch grid; "
                                         "default: the manifest's, else the largest square")

    def as_feature_maps(self, ctx: Context, output: torch.Tensor) -> torch.Tensor:
        """A layer's output as [B, C, h, w]: feature maps as they are, tokens reshaped onto their grid."""
        if output.dim() == 4:
            return output
        if output.dim() != 3:
            raise InvalidParams("the layer must output [batch, channels, height, width] feature maps or "
                                "[batch, tokens, channels] tokens")
        prefix, grid = token_layout(ctx.model.manifest, output.shape[1], self.prefix_tokens, self.grid)
        return tokens_to_grid(output, prefix, grid)


class CamParams(LayerParams):
    pass


def layer_activations_and_gradients(ctx: Context, p: LayerParams) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations A [1, K, h, w] of the layer and d score / d A, from one forward pass (a token layer's
    tokens on their grid).

    The backward pass stops at the layer: nothing before it is differentiated. With several targets, one
    forward and one batched backward serve every target.
    """
    name, layer = ctx.layer(p.layer)
    shared = ctx.shared
    if shared is not None:
        key = digest(ctx.x, "cam", name)

        def every_target() -> tuple[torch.Tensor, list[torch.Tensor]]:
            with torch.enable_grad(), capture_output(layer, leaf=True) as seen:
                outputs = ctx.forward(ctx.x)
                ctx.observe(outputs)
                activation = last_output(seen, name)
                grads, passes = batched_vjp([ctx.score(outputs, t) for t in shared.targets], activation)
            ctx.backward_passes += passes
            shared.scores[key] = activation.detach()
            return outputs.detach(), grads
        outputs, grad = shared.gradients_of(key, ctx.explained, every_target)
        ctx.observe(outputs)
        return p.as_feature_maps(ctx, shared.scores[key]), p.as_feature_maps(ctx, grad)
    ctx.backward_passes += 1
    with torch.enable_grad(), capture_output(layer, leaf=True) as seen:
        outputs = ctx.forward(ctx.x)
        ctx.observe(outputs)
        activation = last_output(seen, name)
        (grad,) = torch.autograd.grad(ctx.score(outputs).sum(), activation)
    return p.as_feature_maps(ctx, activation.detach()), p.as_feature_maps(ctx, grad)


class CamBase(Explainer[P]):
    """Base of the CAM methods: a subclass writes `cam(activations, gradients)`."""

    contrastive = True
    modalities = frozenset({Modality.IMAGE})
    signed = False

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """[1, K, h, w] activations and gradients -> map [h, w] (before the final ReLU)."""
        raise NotImplementedError

    def layer_cam(self, ctx: Context, p: LayerParams) -> tuple[torch.Tensor, dict[str, Any]]:
        """The ReLU'd CAM [h, w] at the layer's resolution, and its details (the base resizes it)."""
        activations, grads = layer_activations_and_gradients(ctx, p)
        low = torch.relu(self.cam(activations.float(), grads.float()))
        return low, {"layer": p.layer or ctx.model.manifest.cam_layer, "cam_shape": list(low.shape)}


class CamExplainer(CamBase[CamParams]):
    """A CAM method with the plain CAM params; several inputs share one forward and backward pass."""

    Params = CamParams

    def _attribute(self, ctx: Context, p: CamParams) -> Attribution:
        return Attribution(*self.layer_cam(ctx, p))

    def batch_key(self, ctx: Context, p: CamParams) -> Hashable | None:
        return image_key(ctx)

    def _attribute_batch(self, ctxs: Sequence[Context], p: CamParams) -> list[Attribution]:
        stack = Stack(ctxs)
        name, layer = stack.first.layer(p.layer)
        owners = stack.every(1)
        with torch.enable_grad(), capture_output(layer, leaf=True) as seen:
            outputs = stack.forward(stack.x, owners)
            stack.observe(outputs)
            activation = last_output(seen, name)
            (grads,) = torch.autograd.grad(stack.score(outputs, owners).sum(), activation)
        stack.backward(owners)
        activation, grads = p.as_feature_maps(stack.first, activation.detach()), p.as_feature_maps(stack.first, grads)
        out = []
        for i in range(len(stack)):
            low = torch.relu(self.cam(activation[i:i + 1].detach().float(), grads[i:i + 1].float()))
            out.append(Attribution(low, {"layer": p.layer or stack.first.model.manifest.cam_layer,
                                         "cam_shape": list(low.shape)}))
        return out


def to_input_size(cam: torch.Tensor, ctx: Context, mode: Literal["bilinear", "nearest"]) -> torch.Tensor:
    """A CAM [h, w] brought to the model input's size, for methods that combine it with input gradients."""
    options = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(cam[None, None], size=tuple(ctx.x.shape[-2:]), mode=mode, **options)[0, 0]


def gradcam_weighting(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM: channels weighted by their spatially averaged gradients."""
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    return (weights * activations).sum(1)[0]
