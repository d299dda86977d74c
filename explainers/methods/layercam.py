"""LayerCAM."""

from __future__ import annotations

import torch

from explainers.methods._cam import CamExplainer
from explainers.registry import register


@register
class LayerCam(CamExplainer):
    """LayerCAM (Jiang et al. 2021). https://doi.org/10.1109/TIP.2021.3089943"""

    name = "layercam"

    def cam(self, activations: torch.Tensor, gradients: torch.Tensor) -> torch.Tensor:
        return (torch.relu(gradients) * activations).sum(1)[0]
