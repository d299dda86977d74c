"""Shared gradient machinery: score gradients, ReLU backward rules, channel reduction."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from explainers.base import Context
from explainers.targets import batched_vjp, digest
from explainers.types import Modality

GRADIENT_MODALITIES = frozenset({Modality.IMAGE, Modality.TEXT, Modality.TABULAR})
ReluRule = Literal["guided", "deconvnet"]


def score_gradient(ctx: Context, batch: torch.Tensor, *, observe: bool = False) -> torch.Tensor:
    """d score / d input for each row of `batch` [B, ...] (rows are independent).

    With `observe`, row 0 is the unperturbed input and its outputs resolve the target,
    so the predictions cost no extra forward pass. With several targets, the first target's call makes one
    forward and one batched backward for every target, and the others find their gradient.
    """
    shared = ctx.shared
    if shared is not None:
        def every_target() -> tuple[torch.Tensor, list[torch.Tensor]]:
            with torch.enable_grad():
                rows = batch.detach().requires_grad_(True)
                outputs = ctx.forward(rows)
                if observe:
                    ctx.observe(outputs[:1])
                grads, passes = batched_vjp([ctx.score(outputs, t) for t in shared.targets], rows)
            ctx.backward_passes += passes
            return outputs.detach(), grads
        outputs, grad = shared.gradients_of(digest(batch, "input"), ctx.explained, every_target)
        if observe:
            ctx.observe(outputs[:1])
        return grad
    ctx.backward_passes += 1
    with torch.enable_grad():
        batch = batch.detach().requires_grad_(True)
        outputs = ctx.forward(batch)
        if observe:
            ctx.observe(outputs[:1])
        (grad,) = torch.autograd.grad(ctx.score(outputs).sum(), batch)
    return grad


def batched_gradients(ctx: Context, batch: torch.Tensor, batch_size: int) -> torch.Tensor:
    """`score_gradient` over a large batch, in chunks of `batch_size` rows."""
    ctx.target()
    return torch.cat([score_gradient(ctx, chunk) for chunk in batch.split(batch_size)])


def reduce(attr: torch.Tensor, modality: Modality, kind: Literal["sum", "abs"]) -> torch.Tensor:
    """One number per pixel, token or feature from an attribution of the input's shape [1, ...].

    sum: signed sum over channels / embedding dimensions. abs: the largest absolute value
    over channels for images (Simonyan et al.), the L2 norm over the embedding for text,
    the absolute value for features.
    """
    a = attr[0]
    if modality is Modality.IMAGE:
        return a.sum(0) if kind == "sum" else a.abs().amax(0)
    if modality is Modality.TEXT:
        return a.sum(-1) if kind == "sum" else a.norm(dim=-1)
    return a if kind == "sum" else a.abs()


@contextmanager
def relu_backward_rule(module: nn.Module, rule: ReluRule) -> Iterator[None]:
    """Override the backward pass of every nn.ReLU in `module` within the block.

    guided: pass only positive gradients where the input was positive (Springenberg et al.);
    deconvnet: pass the positive part of the incoming gradient whatever the input was (Zeiler & Fergus).
    """
    def guided(_m: nn.Module, grad_in: tuple[torch.Tensor, ...], _grad_out: tuple[torch.Tensor, ...]):
        return (F.relu(grad_in[0]),)

    def deconv(_m: nn.Module, _grad_in: tuple[torch.Tensor, ...], grad_out: tuple[torch.Tensor, ...]):
        return (F.relu(grad_out[0]),)

    hook = guided if rule == "guided" else deconv
    handles = [m.register_full_backward_hook(hook) for m in module.modules() if isinstance(m, nn.ReLU)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
