"""Several targets per request: the request's `target` parsed, and the state its targets share.

A request's `target` is one class (null, an index or a label: the one-target body, as always), a list of
1..MAX_TARGETS distinct classes, or an object `{"class": A, "versus": B}` (the score explained is
score_A - score_B). Several targets run one after another on one `SharedEvaluations`: a black-box method's
model evaluations and a gradient method's backward passes are made once, for every target at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from explainers.errors import InvalidTarget

MAX_TARGETS = 16
TARGET_KEYS = frozenset({"class", "versus"})
LATER_KEYS = frozenset({"box", "mask"})  # a segmentation target's region: not served by this build


@dataclass(frozen=True)
class Target:
    """One explained score: class `index`, or the difference index - versus."""

    index: int
    versus: int | None = None


def _index(requested: Any, labels: list[str], what: str) -> int:
    if isinstance(requested, bool) or not isinstance(requested, int | str):
        raise InvalidTarget(f"{what} must be a class index or a label")
    if isinstance(requested, int):
        if not 0 <= requested < len(labels):
            raise InvalidTarget(f"{what} index {requested} is out of range 0..{len(labels) - 1}")
        return requested
    if requested not in labels:
        raise InvalidTarget(f"unknown {what} label {requested!r}", details={"labels": labels[:50]})
    return labels.index(requested)


def is_several(requested: Any) -> bool:
    """Whether the request's target asks for the several-targets body (a list)."""
    return isinstance(requested, list)


def parse_targets(requested: Any, labels: list[str]) -> list[Target] | None:
    """The targets of a request's `target`, checked against the labels; None for one plain class (null,
    an index or a label), which the one-target path resolves as always."""
    if requested is None or isinstance(requested, int | str) and not isinstance(requested, bool):
        return None
    if isinstance(requested, dict):
        keys = set(requested)
        if keys & LATER_KEYS:
            raise InvalidTarget(f"target keys {sorted(keys & LATER_KEYS)} (a region) are not served here",
                                code="unsupported_target")
        if "class" not in keys or keys - TARGET_KEYS:
            raise InvalidTarget("a target object has 'class' and optionally 'versus'",
                                details={"keys": sorted(TARGET_KEYS)})
        index = _index(requested["class"], labels, "target class")
        if requested.get("versus") is None:
            return [Target(index)]
        versus = _index(requested["versus"], labels, "versus class")
        if versus == index:
            raise InvalidTarget("the versus class is the target class: their difference is zero")
        return [Target(index, versus)]
    if isinstance(requested, list):
        if not 1 <= len(requested) <= MAX_TARGETS:
            raise InvalidTarget(f"a target list has 1 to {MAX_TARGETS} classes", code="too_many_targets"
                                if len(requested) > MAX_TARGETS else None, details={"max": MAX_TARGETS})
        if any(isinstance(t, dict) for t in requested):
            raise InvalidTarget("a target list holds classes (indices or labels), not objects: versus applies "
                                "to one target")
        indices = [_index(t, labels, "target") for t in requested]
        if len(set(indices)) != len(indices):
            raise InvalidTarget("the target list names a class twice", details={"targets": indices})
        return [Target(i) for i in indices]
    raise InvalidTarget("target must be a class index, a label, a list of them, an object or null")


def digest(*parts: torch.Tensor | str) -> str:
    """A key for a batch of inputs (its bytes, shape and dtype) and a tag."""
    h = hashlib.blake2b(digest_size=16)
    for part in parts:
        if isinstance(part, str):
            h.update(part.encode())
        else:
            t = part.detach().contiguous().cpu()
            h.update(f"{tuple(t.shape)}{t.dtype}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return h.hexdigest()


@dataclass
class SharedEvaluations:
    """What the targets of one request share while they are explained one after another.

    `scores`: the model's scores of each batch of perturbed inputs already evaluated (a black-box method
    that draws the same inputs for every target evaluates them once). `gradients`: per batch, the gradient
    of every target's score from one forward and one batched backward. `evaluations` and
    `backward_passes` count what was actually run, for every target together.
    """

    targets: list[Target]
    scores: dict[str, torch.Tensor] = field(default_factory=dict)
    gradients: dict[str, tuple[torch.Tensor, list[torch.Tensor]]] = field(default_factory=dict)
    evaluations: int = 0
    backward_passes: int = 0

    def gradients_of(self, key: str, target: Target, compute: Callable[[], tuple[torch.Tensor, list[torch.Tensor]]]
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """The outputs and the gradient of `target`'s score for the batch `key`; `compute` runs the forward
        and one backward for every target when the batch is new."""
        if key not in self.gradients:
            self.gradients[key] = compute()
        outputs, grads = self.gradients[key]
        return outputs, grads[self.targets.index(target)]  # kept: a method may ask for a batch again


def batched_vjp(scores: Sequence[torch.Tensor], wrt: torch.Tensor) -> tuple[list[torch.Tensor], int]:
    """d score_t.sum() / d wrt for each of T scores [B] of one graph, in one batched backward where autograd
    can (vmap over the T output cotangents), else one backward each; with the number of backward passes."""
    stacked = torch.stack([s.sum() for s in scores])
    if len(scores) > 1:
        try:
            eye = torch.eye(len(scores), dtype=stacked.dtype, device=stacked.device)
            (grads,) = torch.autograd.grad(stacked, wrt, eye, retain_graph=True, is_grads_batched=True)
            return list(grads.unbind(0)), 1
        except RuntimeError:  # an op without a batching rule (a backward hook, say): one pass per target
            pass
    out = [torch.autograd.grad(s, wrt, retain_graph=i < len(scores) - 1)[0] for i, s in enumerate(stacked)]
    return out, len(scores)
