"""Guided Grad-CAM: guided backpropagation weighted by the Grad-CAM map."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from explainers.base import Attribution, Context
from explainers.methods._cam import CamParams
from explainers.methods._gradients import reduce, relu_backward_rule, score_gradient
from explainers.methods.gradcam import GradCam
from explainers.registry import register


class GuidedGradCamParams(CamParams):
    upsample: Literal["bilinear", "nearest"] = Field(
        "bilinear", description="how the Grad-CAM map is brought to the input size before weighting")


@register
class GuidedGradCam(GradCam):
    """Guided Grad-CAM (Selvaraju et al. 2017). https://arxiv.org/abs/1610.02391"""

    name = "guided_gradcam"
    Params = GuidedGradCamParams
    signed = True

    def _attribute(self, ctx: Context, p: GuidedGradCamParams) -> Attribution:
        cam, details = self.upsampled(ctx, p, p.upsample)
        with relu_backward_rule(ctx.module, "guided"):
            guided = score_gradient(ctx, ctx.x)
        return Attribution(reduce(guided * cam, ctx.model.modality, "sum"), details)
