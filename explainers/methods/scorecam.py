"""Score-CAM: each activation map of a layer, used as a mask on the input, is weighted by the score it keeps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from explainers.base import Attribution, Context
from explainers.errors import InvalidParams
from explainers.methods._perturbation import PerturbationExplainer
from explainers.params import BlackBoxParams
from explainers.registry import register
from explainers.types import Modality, Requires


class ScoreCamParams(BlackBoxParams):
    layer: str | None = Field(None, max_length=200,
                              description="module name of the CAM layer; default: the model's cam_layer")


def layer_activations(ctx: Context, layer: nn.Module, name: str) -> torch.Tensor:
    """The layer's output [1, K, h, w] from one inference forward of the input (which also sets the target)."""
    seen: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda _m, _i, output: seen.append(output))
    try:
        with torch.inference_mode():
            ctx.observe(ctx.forward(ctx.x))
    finally:
        handle.remove()
    if not seen:
        raise InvalidParams(f"layer {name!r} is not used in the forward pass")
    if not isinstance(seen[-1], torch.Tensor) or seen[-1].dim() != 4:
        raise InvalidParams("the CAM layer must output a [batch, channels, height, width] tensor")
    return seen[-1].float()


def unit_masks(activations: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps [k, h, w] -> masks [k, 1, H, W]: upsampled bilinearly, min-max scaled to [0, 1] (flat -> 0)."""
    up = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=False)
    flat = up.flatten(1)
    low, high = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    span = high - low
    return torch.where(span > 0, (up - low) / span.clamp(min=torch.finfo(up.dtype).tiny), torch.zeros_like(up))


@register
class ScoreCam(PerturbationExplainer):
    """Score-CAM (Wang et al. 2020). https://arxiv.org/abs/1910.01279

    Black-box in its scores, but it reads one layer's activations: it needs a local model.
    """

    name = "scorecam"
    requires = Requires.GRADIENTS  # white-box: it reads a layer's activations (no gradients, but no remote models)
    modalities = frozenset({Modality.IMAGE})
    Params = ScoreCamParams
    signed = False

    def _attribute(self, ctx: Context, p: ScoreCamParams) -> Attribution:
        name = p.layer or ctx.model.manifest.cam_layer
        if not name:
            raise InvalidParams("the model has no default cam_layer: pass params.layer")
        acts = layer_activations(ctx, ctx.model.layer(name), name)[0]  # [K, h, w]
        x = ctx.x
        size = (x.shape[-2], x.shape[-1])
        n = acts.shape[0]
        scores = torch.empty(n, device=acts.device)
        for a in range(0, n, ctx.batch_size):
            b = min(n, a + ctx.batch_size)
            masked = x * unit_masks(acts[a:b], size)
            scores[a:b] = ctx.target_probabilities(masked, ctx.batch_size, done=a / n, share=(b - a) / n)
        weights = scores.softmax(0)
        low = torch.relu(torch.tensordot(weights, acts, dims=1))
        up = F.interpolate(low[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
        return Attribution(up, {"layer": name, "cam_shape": list(low.shape), "channels": n,
                                "channel_weights_max": float(weights.max())})
