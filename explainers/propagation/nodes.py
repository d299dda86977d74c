"""The small modules the canonizer puts where a network calls a function, so that rules can hook them.

Each carries what it computes and nothing else; `kind_of` names the role a module plays for the
rules (a layer with weights, an activation, a sum, a pooling, ...).
"""

from __future__ import annotations

from collections.abc import Callable
from enum import Enum
from typing import Any

import torch
from torch import nn


class Kind(str, Enum):
    """What a module is to the propagation rules."""

    LINEAR = "linear"  # nn.Linear (dense): relevance by the layer rules
    CONV = "conv"  # nn.Conv1d / 2d / 3d
    BATCHNORM = "batchnorm"  # a BatchNorm that could not be folded into the layer before it
    ACTIVATION = "activation"  # elementwise nonlinearity
    AFFINE = "affine"  # elementwise with a constant: (x - mean) / std, a mask of the token ids
    SUM = "sum"  # a sum of computed tensors (a residual connection)
    AVERAGE = "average"  # average pooling, a mean over a dimension
    MAX = "max"  # max pooling, a max over a dimension
    SHAPE = "shape"  # dropout (eval), identity, flatten: relevance moves with its position


WEIGHTED = (Kind.LINEAR, Kind.CONV)

ACTIVATIONS: tuple[type[nn.Module], ...] = (
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.CELU, nn.SELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Softplus,
    nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Mish, nn.PReLU)
_TYPES: list[tuple[tuple[type[nn.Module], ...], Kind]] = [
    ((nn.Linear,), Kind.LINEAR),
    ((nn.Conv1d, nn.Conv2d, nn.Conv3d), Kind.CONV),
    ((nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d), Kind.BATCHNORM),
    (ACTIVATIONS, Kind.ACTIVATION),
    ((nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d, nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d),
     Kind.AVERAGE),
    ((nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d),
     Kind.MAX),
    ((nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout, nn.Identity, nn.Flatten, nn.Unflatten),
     Kind.SHAPE),
]


class Sum(nn.Module):
    """The sum of its inputs (a residual connection's `out += identity`)."""

    kind = Kind.SUM

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        out = inputs[0]
        for other in inputs[1:]:
            out = out + other
        return out


class Call(nn.Module):
    """A function of one computed tensor (plus constant arguments), as a module of a given kind.

    `F.relu(x)` becomes an activation, `x.mean(1)` an average, `x.amax(2)` a max, `(x - mean) / std`
    two affine steps: each then takes the rule of its kind.
    """

    def __init__(self, fn: Callable[..., torch.Tensor], kind: Kind, args: tuple[Any, ...] = (),
                 kwargs: dict[str, Any] | None = None, position: int = 0, label: str = "") -> None:
        super().__init__()
        self.fn, self.kind, self.args, self.kwargs = fn, kind, args, dict(kwargs or {})
        self.position = position  # where the computed tensor goes among the arguments
        self.label = label or getattr(fn, "__name__", str(fn))

    def forward(self, x: torch.Tensor, *constants: Any) -> torch.Tensor:
        args = list(self.args)
        args.insert(self.position, x)
        # constants computed in the graph (a buffer, a mask of the token ids) fill the None slots
        values = iter(constants)
        args = [next(values) if a is _SLOT else a for a in args]
        return self.fn(*args, **self.kwargs)

    def extra_repr(self) -> str:
        return f"{self.label}, kind={self.kind.value}"


class _Slot:
    """Marks an argument of a `Call` filled by a constant computed in the graph."""

    def __repr__(self) -> str:
        return "<graph constant>"


_SLOT = _Slot()


def kind_of(module: nn.Module) -> Kind | None:
    """The role of a module, or None for one the engine cannot propagate through."""
    own = getattr(module, "kind", None)
    if isinstance(own, Kind):
        return own
    for types, kind in _TYPES:
        if isinstance(module, types):
            return kind
    return None


def slot() -> _Slot:
    return _SLOT
