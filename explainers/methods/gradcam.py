"""Grad-CAM."""

from __future__ import annotations

import torch

from explainers.methods._cam import CamExplainer, gradcam_weighting
from explainers.registry import register


@register
class GradCam(CamExplainer):
    """Grad-CAM (Selvaraju et al. 2017). https://arxiv.org/abs/1610.02391"""

    name = "gradcam"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return gradcam_weighting(activations, gradients)
