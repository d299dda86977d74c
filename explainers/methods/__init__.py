"""Every method, imported explicitly so that the registry sees it; the methods by name."""

from __future__ import annotations

from typing import Any

from explainers.base import Explainer
from explainers.errors import WrongScope
from explainers.global_base import GlobalExplainer
from explainers.method import Method
from explainers.methods import (  # noqa: F401  (the explicit import list registers every method)
    activation_maximisation,
    anchors,
    attention_rollout,
    cle,
    deconvnet,
    deep_taylor,
    deeplift,
    excitation_backprop,
    extremal_perturbation,
    feature_inversion,
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
    normlime,
    occlusion,
    pattern_attribution,
    patternnet,
    rise,
    rule_extraction,
    saliency,
    scorecam,
    shapley_sampling,
    smoothgrad,
    transformer_attribution,
)
from explainers.registry import lookup, registered
from explainers.types import Scope


def all_methods() -> dict[str, type[Method[Any]]]:
    """Every registered method, local and global, by name, sorted."""
    return registered()


def local_methods() -> dict[str, type[Explainer[Any]]]:
    """The methods that explain one input (`POST /explain/{method}`), by name."""
    return {name: cls for name, cls in registered().items() if issubclass(cls, Explainer)}


def global_methods() -> dict[str, type[GlobalExplainer[Any]]]:
    """The methods that explain a model (`POST /models/{id}/global/{method}`), by name."""
    return {name: cls for name, cls in registered().items() if issubclass(cls, GlobalExplainer)}


def get_method(name: str) -> type[Explainer[Any]]:
    """The local method called `name`: an `unknown_method` error listing the known ones, or for a global
    method a 422 `global_method` saying where to ask (`explainers.registry.lookup` finds either scope)."""
    cls = lookup(name)
    if not issubclass(cls, Explainer):
        raise WrongScope(f"method {name!r} explains a model, not one input: POST /models/{{model_id}}/global/{name}",
                         code="global_method", details={"scope": Scope.GLOBAL.value})
    return cls


def get_global_method(name: str) -> type[GlobalExplainer[Any]]:
    """The global method called `name`; a local one is a 422 `local_method` saying where to ask."""
    cls = lookup(name)
    if not issubclass(cls, GlobalExplainer):
        raise WrongScope(f"method {name!r} explains one input, not a model: POST /explain/{name}",
                         code="local_method", details={"scope": Scope.LOCAL.value})
    return cls
