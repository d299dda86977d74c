"""PatternAttribution: the contribution of the estimated signal, layer by layer."""

from __future__ import annotations

from explainers.methods._patterns import PatternExplainer
from explainers.registry import register


@register
class PatternAttribution(PatternExplainer):
    """PatternAttribution (Kindermans et al. 2018). https://arxiv.org/abs/1705.05598

    The backward pass with each layer's weights replaced by patterns times weights, started at the logit.
    """

    name = "pattern_attribution"
    attribution = True
