"""The rule engine: rules installed as hooks on a canonized graph inside a `with` block.

A forward hook on each ruled module routes the module's backward pass through its rule (a custom
autograd function whose backward is the rule); the module's own backward is never run. Handles are
removed in `finally`, so an exception leaves no hook behind. Layers without a rule (max pooling,
reshapes, concatenations) keep their plain gradient, which moves relevance with its position.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from explainers.propagation.graph import Canonized
from explainers.propagation.rules import Rule


@dataclass
class Record:
    """What one layer call received and handed down (tests check conservation layer by layer)."""

    target: str
    rule: str
    relevance_out: float
    relevance_in: float


@dataclass
class Recorder:
    records: list[Record] = field(default_factory=list)


@dataclass
class _Site:
    target: str
    module: nn.Module
    rule: Rule
    recorder: Recorder | None
    nonneg: bool = False  # every call's first input is >= 0 by construction
    grad_modes: list[bool] = field(default_factory=list)


class _RuleBackward(torch.autograd.Function):
    """Identity in the forward pass; the site's rule in the backward pass."""

    @staticmethod
    def forward(ctx: Any, site: _Site, output: torch.Tensor, *inputs: torch.Tensor) -> torch.Tensor:
        ctx.site = site
        ctx.save_for_backward(output, *inputs)
        return output.view_as(output)

    @staticmethod
    def backward(ctx: Any, relevance: torch.Tensor) -> tuple[torch.Tensor | None, ...]:
        output, *inputs = ctx.saved_tensors
        site: _Site = ctx.site
        grads = site.rule.backward(site.module, tuple(inputs), output, relevance, nonneg=site.nonneg)
        grads = tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad[2:]))
        if site.recorder is not None:
            given = sum(float(g.double().sum()) for g in grads if g is not None)
            site.recorder.records.append(Record(site.target, site.rule.name, float(relevance.double().sum()), given))
        return (None, None, *grads)


@contextmanager
def installed(canon: Canonized, rules: Mapping[str, Rule], recorder: Recorder | None = None) -> Iterator[None]:
    """Within the block, each module named in `rules` (by graph target) propagates by its rule."""
    handles = []
    try:
        for target, rule in rules.items():
            module = canon.graph.get_submodule(target)
            calls = [s for s in canon.steps if s.target == target]
            site = _Site(target, module, rule, recorder, nonneg=bool(calls) and all(s.nonneg_input for s in calls))
            handles.append(module.register_forward_pre_hook(_no_grad(site)))
            handles.append(module.register_forward_hook(_hook(site)))
        yield
    finally:
        for handle in handles:
            handle.remove()


def _no_grad(site: _Site) -> Callable[[nn.Module, tuple[Any, ...]], None]:
    """The ruled module's own forward records nothing for autograd: its rule replaces its backward."""
    def pre_hook(_module: nn.Module, _args: tuple[Any, ...]) -> None:
        site.grad_modes.append(torch.is_grad_enabled())
        torch.set_grad_enabled(False)
    return pre_hook


def _hook(site: _Site) -> Callable[[nn.Module, tuple[Any, ...], Any], torch.Tensor]:
    def hook(_module: nn.Module, args: tuple[Any, ...], output: Any) -> torch.Tensor:
        torch.set_grad_enabled(site.grad_modes.pop())
        tensors = tuple(a for a in args if isinstance(a, torch.Tensor))
        return _RuleBackward.apply(site, output, *tensors)
    return hook


Seed = Callable[[torch.Tensor], torch.Tensor]


def propagate(canon: Canonized, rules: Mapping[str, Rule], x: torch.Tensor, seed: Seed, *,
              native: torch.Tensor | None = None,
              recorder: Recorder | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Relevance at the input x [B, ...] and the outputs [B, K] of one forward and one modified backward.

    `seed(outputs)` is what the backward starts from at the outputs (the relevance of each output).
    """
    with torch.enable_grad(), installed(canon, rules, recorder):
        xr = x.detach().requires_grad_(True)
        outputs = canon.forward(xr, native)
        start = seed(outputs.detach())
        (relevance,) = torch.autograd.grad(outputs, xr, start)
    return relevance, outputs.detach()


def one_hot(outputs: torch.Tensor, target: int, scale: torch.Tensor | float = 1.0) -> torch.Tensor:
    """A seed that starts the backward at the target output only, with `scale` (1, or the output itself)."""
    seed = torch.zeros_like(outputs)
    seed[:, target] = scale if isinstance(scale, float) else scale
    return seed
