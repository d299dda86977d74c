"""PatternNet: the estimated signal, back-projected layer by layer."""

from __future__ import annotations

from explainers.methods._patterns import PatternExplainer
from explainers.registry import register


@register
class PatternNet(PatternExplainer):
    """PatternNet (Kindermans et al. 2018). https://arxiv.org/abs/1705.05598

    The backward pass of the gradient with each layer's weights replaced by its patterns; the signal is
    rescaled to a largest magnitude of 1 at each layer (only its direction is meaningful).
    """

    name = "patternnet"
    attribution = False
