"""The CAM family's shared loop: activations and gradients at one layer, then a weighting."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.hooks import capture_output, last_output
from explainers.params import P, Params
from explainers.targets import batched_vjp, digest
from explainers.types import Modality

LAYER_HELP = "module name of the CAM layer; default: the model's cam_layer"


class CamParams(Params):
    layer: str | None = Field(None, max_length=200, description=LAYER_HELP)


def layer_activations_and_gradients(ctx: Context, layer_name: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations A [1, K, h, w] of the layer and d score / d A, from one forward pass.

    The backward pass stops at the layer: nothing before it is differentiated. With several targets, one
    forward and one batched backward serve every target.
    """
    name, layer = ctx.layer(layer_name)
    shared = ctx.shared
    if shared is not None:
        key = digest(ctx.x, "cam", name)

        def every_target() -> tuple[torch.Tensor, list[torch.Tensor]]:
            with torch.enable_grad(), capture_output(layer, leaf=True, feature_map=True) as seen:
                outputs = ctx.forward(ctx.x)
                activation = last_output(seen, name)
                grads, passes = batched_vjp([ctx.score(outputs, t) for t in shared.targets], activation)
            ctx.backward_passes += passes
            shared.scores[key] = activation.detach()
            return outputs.detach(), grads
        outputs, grad = shared.gradients_of(key, ctx.explained, every_target)
        ctx.observe(outputs)
        return shared.scores[key], grad
    ctx.backward_passes += 1
    with torch.enable_grad(), capture_output(layer, leaf=True, feature_map=True) as seen:
        outputs = ctx.forward(ctx.x)
        ctx.observe(outputs)
        activation = last_output(seen, name)
        (grad,) = torch.autograd.grad(ctx.score(outputs).sum(), activation)
    return activation.detach(), grad


class CamBase(Explainer[P]):
    """Base of the CAM methods: a subclass writes `cam(activations, gradients)`."""

    modalities = frozenset({Modality.IMAGE})
    signed = False
    contrastive = True

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """[1, K, h, w] activations and gradients -> map [h, w] (before the final ReLU)."""
        raise NotImplementedError

    def layer_cam(self, ctx: Context, layer: str | None) -> tuple[torch.Tensor, dict[str, Any]]:
        """The ReLU'd CAM [h, w] at the layer's resolution, and its details (the base resizes it)."""
        activations, grads = layer_activations_and_gradients(ctx, layer)
        low = torch.relu(self.cam(activations.float(), grads.float()))
        return low, {"layer": layer or ctx.model.manifest.cam_layer, "cam_shape": list(low.shape)}


class CamExplainer(CamBase[CamParams]):
    """A CAM method with the plain CAM params."""

    Params = CamParams

    def _attribute(self, ctx: Context, p: CamParams) -> Attribution:
        return Attribution(*self.layer_cam(ctx, p.layer))


def to_input_size(cam: torch.Tensor, ctx: Context, mode: Literal["bilinear", "nearest"]) -> torch.Tensor:
    """A CAM [h, w] brought to the model input's size, for methods that combine it with input gradients."""
    options = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(cam[None, None], size=tuple(ctx.x.shape[-2:]), mode=mode, **options)[0, 0]


def gradcam_weighting(activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
    """Grad-CAM: channels weighted by their spatially averaged gradients."""
    weights = gradients.mean(dim=(2, 3), keepdim=True)
    return (weights * activations).sum(1)[0]
