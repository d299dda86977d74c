"""Guided Grad-CAM: guided backpropagation weighted by the Grad-CAM map."""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field

from explainers.base import Attribution, Context
from explainers.methods._cam import CamBase, CamParams, gradcam_weighting, to_input_size
from explainers.methods._gradients import reduce, relu_backward_rule, score_gradient
from explainers.registry import register


class GuidedGradCamParams(CamParams):
    upsample: Literal["bilinear", "nearest"] = Field(
        "bilinear", description="how the Grad-CAM map is brought to the input size before weighting")


@register
class GuidedGradCam(CamBase[GuidedGradCamParams]):
    """Guided Grad-CAM (Selvaraju et al. 2017). https://arxiv.org/abs/1610.02391"""

    name = "guided_gradcam"
    contrastive = True
    Params = GuidedGradCamParams
    signed = True

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradcam_weighting(activations, gradients)

    def _attribute(self, ctx: Context, p: GuidedGradCamParams) -> Attribution:
        low, details = self.layer_cam(ctx, p.layer)
        with relu_backward_rule(ctx.module, "guided"):
            guided = score_gradient(ctx, ctx.x)
        return Attribution(reduce(guided * to_input_size(low, ctx, p.upsample), ctx.model.modality, "sum"), details)
