"""Several targets per request: the request's target classes parsed, and the state its targets share.

The class part of a request's `target` (what is left once `explainers.regions.split_target` took out a
segmentation region) is one class (null, an index or a label: the one-target body, as always), a list of
1..MAX_TARGETS distinct classes, or `{"class": A, "versus": B}` (the score explained is score_A - score_B).
Several targets run one after another on one `SharedEvaluations`: a black-box method's model evaluations
and a gradient method's backward passes are made once, for every target at once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from explainers.errors import InvalidTarget

MAX_TARGETS = 16


@dataclass(frozen=True)
class Target:
    """One explained score: class `index`, or the difference index - versus."""

    index: int
    versus: int | None = None

    def of(self, scores: torch.Tensor) -> torch.Tensor:
        """This target's score in each row of class scores [B, K] -> [B]."""
        mine = scores[:, self.index]
        return mine if self.versus is None else mine - scores[:, self.versus]


def class_index(requested: Any, labels: list[str], what: str = "target") -> int:
    """A class given as an index or a label -> its index (a coded 4xx when there is none)."""
    if isinstance(requested, bool) or not isinstance(requested, int | str):
        raise InvalidTarget(f"{what} must be a class index or a label")
    if isinstance(requested, int):
        if not 0 <= requested < len(labels):
            raise InvalidTarget(f"{what} index {requested} is out of range 0..{len(labels) - 1}")
        return requested
    if requested not in labels:
        raise InvalidTarget(f"unknown {what} label {requested!r}", details={"labels": labels[:50]})
    return labels.index(requested)


def parse_targets(requested: Any, labels: list[str]) -> list[Target] | None:
    """The targets of a request's target classes, checked against the labels; None for one plain class
    (null, an index or a label), which the one-target path resolves as always."""
    if requested is None or isinstance(requested, int | str) and not isinstance(requested, bool):
        return None
    if isinstance(requested, Mapping):
        index = class_index(requested.get("class"), labels, "target class")
        if requested.get("versus") is None:
            return [Target(index)]
        versus = class_index(requested["versus"], labels, "versus class")
        if versus == index:
            raise InvalidTarget("the versus class is the target class: their difference is zero",
                                details={"class": index, "versus": versus})
        return [Target(index, versus)]
    if isinstance(requested, list):
        if not 1 <= len(requested) <= MAX_TARGETS:
            raise InvalidTarget(f"a target list has 1 to {MAX_TARGETS} classes",
                                code="too_many_targets" if len(requested) > MAX_TARGETS else None,
                                details={"max": MAX_TARGETS, "given": len(requested)})
        indices = [class_index(t, labels) for t in requested]
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

    `scores`: the model's scores of each batch of inputs already evaluated (a black-box method that draws
    the same inputs for every target evaluates them once). `gradients`: per batch, the outputs and the
    gradient of every target's score, from one forward and one batched backward. `evaluations` and
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
        return outputs, grads[self.targets.index(target)]


def batched_vjp(scores: Sequence[torch.Tensor], wrt: torch.Tensor) -> tuple[list[torch.Tensor], int]:
    """d score_t.sum() / d wrt for each of T scores [B] of one graph: one batched backward where autograd
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
