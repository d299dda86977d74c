"""Grad-CAM++."""

from __future__ import annotations

import torch

from explainers.methods._cam import CamExplainer
from explainers.registry import register


@register
class GradCamPlusPlus(CamExplainer):
    """Grad-CAM++ (Chattopadhyay et al. 2018). https://arxiv.org/abs/1710.11063"""

    name = "gradcam++"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        # Second- and third-order terms with the exponential-score simplification of the paper.
        g2, g3 = gradients.pow(2), gradients.pow(3)
        total = activations.sum(dim=(2, 3), keepdim=True)
        alpha = g2 / (2 * g2 + total * g3 + 1e-7)
        alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))
        weights = (alpha * torch.relu(gradients)).sum(dim=(2, 3), keepdim=True)
        return (weights * activations).sum(1)[0]
