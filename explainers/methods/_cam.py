"""The CAM family's shared loop: activations and gradients at one layer, then a weighting."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import torch
from pydantic import Field
from torch import nn

from explainers.base import Attribution, Context, Explainer
from explainers.errors import InvalidParams
from explainers.params import Params
from explainers.types import Modality


class CamParams(Params):
    layer: str | None = Field(None, max_length=200,
                              description="module name of the CAM layer; default: the model's cam_layer")


@contextmanager
def capture_layer(layer: nn.Module) -> Iterator[list[torch.Tensor]]:
    """Within the block, the layer's output becomes a leaf that collects gradients.

    The backward pass then stops at the layer: nothing before it is differentiated.
    """
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inputs: object, output: object) -> torch.Tensor:
        if not isinstance(output, torch.Tensor) or output.dim() != 4:
            raise InvalidParams("the CAM layer must output a [batch, channels, height, width] tensor")
        leaf = output.detach().requires_grad_(True)
        seen.append(leaf)
        return leaf

    handle = layer.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def layer_activations_and_gradients(ctx: Context, layer_name: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """Activations A [1, K, h, w] of the layer and d score / d A, from one forward pass."""
    name = layer_name or ctx.model.manifest.cam_layer
    if not name:
        raise InvalidParams("the model has no default cam_layer: pass params.layer")
    layer = ctx.model.layer(name)
    with torch.enable_grad(), capture_layer(layer) as seen:
        outputs = ctx.forward(ctx.x)
        ctx.observe(outputs)
        if not seen:
            raise InvalidParams(f"layer {name!r} is not used in the forward pass")
        activation = seen[-1]
        (grad,) = torch.autograd.grad(ctx.score(outputs).sum(), activation)
    return activation.detach(), grad


class CamExplainer(Explainer):
    """Base of the CAM methods: a subclass writes `cam(activations, gradients)`."""

    modalities = frozenset({Modality.IMAGE})
    Params = CamParams
    signed = False

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        """[1, K, h, w] activations and gradients -> map [h, w] (before the final ReLU)."""
        raise NotImplementedError

    def _attribute(self, ctx: Context, p: Any) -> Attribution:
        # `p` is an instance of `self.Params`: a `CamParams`, or a subclass's own model (as in `Explainer`)
        return Attribution(*self.upsampled(ctx, p, "bilinear"))

    def upsampled(self, ctx: Context, p: CamParams, mode: str) -> tuple[torch.Tensor, dict[str, Any]]:
        """The ReLU'd CAM [H, W], upsampled to the model's input size, and its details."""
        activations, grads = layer_activations_and_gradients(ctx, p.layer)
        low = torch.relu(self.cam(activations.float(), grads.float()))
        height, width = ctx.x.shape[-2:]
        options = {"align_corners": False} if mode == "bilinear" else {}
        up = torch.nn.functional.interpolate(low[None, None], size=(height, width), mode=mode, **options)[0, 0]
        return up, {"layer": p.layer or ctx.model.manifest.cam_layer, "cam_shape": list(low.shape)}
