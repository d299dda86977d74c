"""Forward hooks for every method that reads or replaces a layer's output, each inside a `with` block.

Handles are removed in `finally`, so an exception (a bad layer, a canceled job) leaves no hook behind.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from explainers.errors import InvalidParams


@contextmanager
def capture_output(layer: nn.Module, *, leaf: bool = False, feature_map: bool = False) -> Iterator[list[torch.Tensor]]:
    """Within the block, each output of `layer` is appended to the yielded list.

    leaf: the output is replaced by a detached copy that collects gradients, so a backward pass stops
    at the layer (nothing before it is differentiated). feature_map: the output must be a
    [batch, channels, height, width] tensor (an `invalid_params` error otherwise).
    """
    seen: list[torch.Tensor] = []

    def hook(_m: nn.Module, _inputs: object, output: object) -> torch.Tensor | None:
        if not isinstance(output, torch.Tensor) or (feature_map and output.dim() != 4):
            raise InvalidParams("the layer must output a [batch, channels, height, width] tensor")
        if leaf:
            output = output.detach().requires_grad_(True)
        seen.append(output)
        return output if leaf else None

    handle = layer.register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


@contextmanager
def replaced_output(module: nn.Module, value: torch.Tensor) -> Iterator[None]:
    """Within the block, `module` returns `value` instead of its own output."""
    handle = module.register_forward_hook(lambda _m, _i, _o: value)
    try:
        yield
    finally:
        handle.remove()


def last_output(seen: list[torch.Tensor], name: str) -> torch.Tensor:
    """The layer output a forward pass recorded, or an `invalid_params` error if the layer was not used."""
    if not seen:
        raise InvalidParams(f"layer {name!r} is not used in the forward pass")
    return seen[-1]
