"""Score-CAM: each activation map of a layer, used as a mask on the input, is weighted by the score it keeps."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from explainers.base import Attribution, BudgetExhausted, Context
from explainers.hooks import capture_output, last_output
from explainers.methods._cam import LAYER_HELP
from explainers.methods._perturbation import PerturbationExplainer
from explainers.params import BlackBoxParams
from explainers.registry import register
from explainers.types import Modality, Requires


class ScoreCamParams(BlackBoxParams):
    layer: str | None = Field(None, max_length=200, description=LAYER_HELP)


def layer_activations(ctx: Context, name: str, layer: nn.Module) -> torch.Tensor:
    """The layer's output [1, K, h, w] from one inference forward of the input (which also sets the target)."""
    with torch.inference_mode(), capture_output(layer, feature_map=True) as seen:
        ctx.observe(ctx.forward(ctx.x))
    return last_output(seen, name).float()


def unit_masks(activations: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Maps [k, h, w] -> masks [k, 1, H, W]: upsampled bilinearly, min-max scaled to [0, 1] (flat -> 0)."""
    up = F.interpolate(activations[:, None], size=size, mode="bilinear", align_corners=False)
    flat = up.flatten(1)
    low, high = flat.amin(1).view(-1, 1, 1, 1), flat.amax(1).view(-1, 1, 1, 1)
    span = high - low
    return torch.where(span > 0, (up - low) / span.clamp(min=torch.finfo(up.dtype).tiny), torch.zeros_like(up))


@register
class ScoreCam(PerturbationExplainer[ScoreCamParams]):
    """Score-CAM (Wang et al. 2020). https://arxiv.org/abs/1910.01279

    Black-box in its scores, but it reads one layer's activations: it needs a local model.
    """

    name = "scorecam"
    contrastive = True
    requires = Requires.ACTIVATIONS
    needs_module = True
    modalities = frozenset({Modality.IMAGE})
    Params = ScoreCamParams
    signed = False

    def _attribute(self, ctx: Context, p: ScoreCamParams) -> Attribution:
        name, layer = ctx.layer(p.layer)
        acts = layer_activations(ctx, name, layer)[0]  # [K, h, w]
        x = ctx.x
        size = (x.shape[-2], x.shape[-1])
        n = acts.shape[0]
        scores = torch.empty(n, device=acts.device)
        used = 0
        for a in range(0, n, ctx.batch_size):
            b = a + ctx.room(min(ctx.batch_size, n - a))
            if b == a:
                if a == 0:
                    raise BudgetExhausted("evaluations")
                ctx.stopped = "budget"
                break
            masked = x * unit_masks(acts[a:b], size)
            try:
                scores[a:b] = ctx.target_probabilities(masked, ctx.batch_size, done=a / n, share=(b - a) / n)
            except BudgetExhausted:
                if a == 0:
                    raise
                ctx.stopped = "budget"  # the channels scored so far weigh the map
                break
            used = b
            if b < min(n, a + ctx.batch_size):
                ctx.stopped = "budget"
                break
        weights = scores[:used].softmax(0)
        low = torch.relu(torch.tensordot(weights, acts[:used], dims=1))  # the base resizes it to the image
        return Attribution(low, {"layer": name, "cam_shape": list(low.shape), "channels": used,
                                "channel_weights_max": float(weights.max())})
