"""Composites: a rule per layer type, and one for the first layer, under the names people know.

The names and their maps follow Zennit's (Anders et al. 2021) and Kohlbrenner et al. 2020
("Towards best practice in explaining neural network decisions with LRP"): convolutions take z-plus,
gamma or alpha-beta, dense layers epsilon, the first layer flat or z-box. Layers without weights take
the same rules in every composite: activations, elementwise constants and unfolded BatchNorms pass
relevance through, sums and average poolings split it in proportion to their inputs, max pooling
hands it to the winner.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

from explainers.propagation.errors import RuleNotSupported
from explainers.propagation.graph import Canonized
from explainers.propagation.nodes import Kind
from explainers.propagation.rules import (
    AlphaBeta,
    Epsilon,
    Flat,
    Gamma,
    Norm,
    Pass,
    Rule,
    WSquare,
    ZBox,
    ZPlus,
)

RuleName = Literal["epsilon", "gamma", "alpha_beta", "z_plus", "flat", "w_square", "z_box"]
LayerType = Literal["first", "conv", "linear"]
CompositeName = Literal["epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1",
                        "epsilon_alpha2_beta1_flat", "epsilon_plus", "epsilon", "z_plus"]

COMPOSITES: dict[str, dict[LayerType, RuleName]] = {
    "epsilon_plus_flat": {"conv": "z_plus", "linear": "epsilon", "first": "flat"},
    "epsilon_gamma_box": {"conv": "gamma", "linear": "epsilon", "first": "z_box"},
    "epsilon_alpha2_beta1": {"conv": "alpha_beta", "linear": "epsilon"},
    "epsilon_alpha2_beta1_flat": {"conv": "alpha_beta", "linear": "epsilon", "first": "flat"},
    "epsilon_plus": {"conv": "z_plus", "linear": "epsilon"},
    "epsilon": {"conv": "epsilon", "linear": "epsilon"},
    "z_plus": {"conv": "z_plus", "linear": "z_plus"},
}
COMPOSITE_HELP = ("epsilon_plus_flat: z-plus convolutions, epsilon dense layers, flat first layer; "
                  "epsilon_gamma_box: gamma convolutions, epsilon dense layers, z-box first layer (images); "
                  "epsilon_alpha2_beta1: alpha-beta convolutions, epsilon dense layers (and a flat first layer: "
                  "epsilon_alpha2_beta1_flat); epsilon_plus: z-plus "
                  "convolutions, epsilon dense layers; epsilon: epsilon everywhere (LRP-0 as epsilon -> 0); "
                  "z_plus: z-plus everywhere")


@dataclass(frozen=True)
class RuleSettings:
    """The knobs of the rules, and the input bounds of z-box (None where inputs are not pixels)."""

    epsilon: float = 1e-6
    gamma: float = 0.25
    alpha: float = 2.0
    beta: float = 1.0
    stabilizer: float = 1e-6
    bounds: tuple[torch.Tensor, torch.Tensor] | None = None
    modality: str = "image"

    def make(self, name: RuleName) -> Rule:
        if name == "epsilon":
            return Epsilon(self.epsilon)
        if name == "gamma":
            return Gamma(self.gamma, self.stabilizer)
        if name == "alpha_beta":
            return AlphaBeta(self.alpha, self.beta, self.stabilizer)
        if name == "z_plus":
            return ZPlus(self.stabilizer)
        if name == "flat":
            return Flat(self.stabilizer)
        if name == "w_square":
            return WSquare(self.stabilizer)
        if self.bounds is None:
            raise RuleNotSupported(f"the z_box rule needs inputs bounded by known pixel values; this is a "
                                   f"{self.modality} model (use flat or w_square for its first layer)",
                                   details={"rule": "z_box", "modality": self.modality})
        return ZBox(*self.bounds, self.stabilizer)


@dataclass(frozen=True)
class Composite:
    """Rules by layer type (`conv`, `linear`) and for the first weighted layer (`first`)."""

    layers: Mapping[LayerType, Rule]
    sums: Rule
    passes: Rule

    @classmethod
    def named(cls, rules: Mapping[LayerType, RuleName], settings: RuleSettings) -> Composite:
        made: dict[LayerType, Rule] = {t: settings.make(n) for t, n in rules.items()}
        return cls(made, Norm(settings.stabilizer), Pass())

    def assign(self, canon: Canonized) -> dict[str, Rule]:
        """The rule of each module of the graph (by target); modules without one keep their gradient."""
        out: dict[str, Rule] = {}
        for step in canon.steps:
            rule: Rule | None = None
            if step.kind in (Kind.CONV, Kind.LINEAR):
                own = self.layers.get("conv" if step.kind is Kind.CONV else "linear")
                rule = self.layers.get("first", own) if step is canon.first else own
            elif step.kind in (Kind.SUM, Kind.AVERAGE):
                rule = self.sums
            elif step.kind in (Kind.ACTIVATION, Kind.AFFINE, Kind.BATCHNORM) and type(step.module) is not nn.ReLU:
                # a ReLU's gradient is its Pass rule here: every rule above hands it relevance in proportion
                # to its (non-negative) output, so no relevance reaches a unit whose input was negative
                rule = self.passes
            if rule is not None:
                out.setdefault(step.target, rule)
        return out


def composite_rules(name: str, overrides: Mapping[LayerType, RuleName] | None = None) -> dict[LayerType, RuleName]:
    """A named composite's rule map with a request's per-layer-type rules on top."""
    return {**COMPOSITES[name], **(overrides or {})}
