"""Every method, imported explicitly so that the registry sees it; the methods by name."""

from __future__ import annotations

from typing import Any

from explainers.base import Explainer
from explainers.methods import (  # noqa: F401  (the explicit import list registers every method)
    anchors,
    deconvnet,
    deep_taylor,
    deeplift,
    excitation_backprop,
    gradcam,
    gradcam_plusplus,
    guided_backprop,
    guided_gradcam,
    input_x_gradient,
    integrated_gradients,
    kernel_shap,
    layercam,
    lime,
    lrp,
    occlusion,
    pattern_attribution,
    patternnet,
    rise,
    saliency,
    scorecam,
    smoothgrad,
)
from explainers.registry import lookup, registered


def all_methods() -> dict[str, type[Explainer[Any]]]:
    """Every registered method by name, sorted."""
    return registered()


def get_method(name: str) -> type[Explainer[Any]]:
    """The method called `name`, or an `unknown_method` error listing the known ones."""
    return lookup(name)
