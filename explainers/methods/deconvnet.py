"""DeconvNet."""

from __future__ import annotations

from explainers.methods.guided_backprop import GuidedBackprop
from explainers.registry import register


@register
class DeconvNet(GuidedBackprop):
    """DeconvNet (Zeiler & Fergus 2014). https://arxiv.org/abs/1311.2901"""

    name = "deconvnet"
    rule = "deconvnet"
