"""Several inputs explained by one method in shared batches.

`explain_batch` prepares every input, groups those a method can attribute together (the same
`Explainer.batch_key`: for images of one model, the model input size) and runs each group through
`_attribute_batch`; an input whose method gives no key runs alone, through `_attribute`. A method's
batched form packs its inputs' rows (the inputs, their path points, noisy copies, perturbations) into
the same forward passes; `Stack` gives it the per-row targets and scores.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import torch

from explainers.base import Attribution, BudgetExhausted, Call, Context, Explainer, Progress
from explainers.context import Share
from explainers.evaluation.faithfulness import FaithfulnessOptions
from explainers.models.handle import RawInput
from explainers.models.protocol import Model
from explainers.result import Explanation

__all__ = ["Stack", "explain_batch"]


class Stack:
    """Contexts whose inputs stack ([1, ...] each, the same shape and forward): the rows of a batch are
    owned by contexts (`owners`, an index per row), each row scored for its owner's target."""

    def __init__(self, ctxs: Sequence[Context]) -> None:
        self.ctxs = list(ctxs)
        self.x = torch.cat([c.x for c in self.ctxs])
        self.first = self.ctxs[0]

    def __len__(self) -> int:
        return len(self.ctxs)

    def every(self, rows_each: int) -> torch.Tensor:
        """Owners of `rows_each` consecutive rows per context: [0, 0, ..., 1, 1, ...]."""
        return torch.arange(len(self), device=self.x.device).repeat_interleave(rows_each)

    def count(self, owners: torch.Tensor) -> None:
        """Count a batch's rows in the evaluations of their owners."""
        for i, n in enumerate(torch.bincount(owners.cpu(), minlength=len(self)).tolist()):
            self.ctxs[i].evaluations += int(n)

    def backward(self, owners: torch.Tensor) -> None:
        """Count one backward pass for each context that owns rows of the batch."""
        for i in torch.unique(owners.cpu()).tolist():
            self.ctxs[int(i)].backward_passes += 1

    def forward(self, batch: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """The model on a batch of `x`-space rows (a gradient method's passes), counted per owner."""
        self.count(owners)
        return self.first.inputs.forward(batch)

    def observe(self, outputs: torch.Tensor) -> None:
        """Resolve each context's target from its row of the outputs [n, K] of the unperturbed inputs."""
        for i, ctx in enumerate(self.ctxs):
            ctx.observe(outputs[i:i + 1])

    def resolve(self) -> None:
        """Every context's target from one inference pass of the stacked inputs (not counted, as
        `Context.target`)."""
        if any(c.target_prediction is None for c in self.ctxs):
            with torch.inference_mode():
                outputs = self.first.inputs.forward(self.x)
            self.observe(outputs)

    def targets(self, owners: torch.Tensor) -> torch.Tensor:
        classes = torch.tensor([c.target() for c in self.ctxs], device=owners.device)
        return classes[owners]

    def score(self, outputs: torch.Tensor, owners: torch.Tensor) -> torch.Tensor:
        """Each row's explained score of its owner's target: `Context.score`, row by row."""
        ctx = self.first
        if ctx.score_kind == "probabilities" and ctx.model.manifest.output != "probabilities":
            outputs = ctx.model.probabilities(outputs)
        return outputs.gather(1, self.targets(owners).to(outputs.device)[:, None])[:, 0]

    def gradient(self, batch: torch.Tensor, owners: torch.Tensor, *, observe: bool = False) -> torch.Tensor:
        """d score / d row for each row of `batch` (rows are independent). With `observe`, the batch is the
        stacked inputs themselves, whose outputs resolve the targets."""
        with torch.enable_grad():
            batch = batch.detach().requires_grad_(True)
            outputs = self.forward(batch, owners)
            if observe:
                self.observe(outputs)
            (grad,) = torch.autograd.grad(self.score(outputs, owners).sum(), batch)
        self.backward(owners)
        return grad

    def gradients(self, n: int, make: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
                  batch_size: int, *, reduce: Callable[[torch.Tensor, torch.Tensor, int, int], None]) -> None:
        """The gradients of `n` rows built on demand (`make(a, b)`: rows a..b-1 and their owners), `batch_size`
        per pass, each chunk handed to `reduce(grad, owners, a, b)`: rows are never all held at once."""
        self.resolve()
        for a in range(0, n, batch_size):
            b = min(n, a + batch_size)
            rows, owners = make(a, b)
            reduce(self.gradient(rows, owners), owners, a, b)
            self.first.progress(b / n)

    def predict(self, n: int, make: Callable[[int, int], tuple[torch.Tensor, torch.Tensor]],
                batch_size: int) -> torch.Tensor:
        """The explained score of `n` native rows built on demand (`make(a, b)`) for their owners' targets
        -> [n], `batch_size` rows per model call (a black-box method's passes), with progress."""
        self.resolve()
        out = []
        for a in range(0, n, batch_size):
            b = min(n, a + batch_size)
            rows, owners = make(a, b)
            self.count(owners)
            scores = self.first.predict(rows, batch_size, done=a / n, share=(b - a) / n)
            out.append(scores.gather(1, self.targets(owners).to(scores.device)[:, None])[:, 0])
        self.first.evaluations -= n  # `Context.predict` counted them all in the first context: `count` did
        return torch.cat(out)


def image_key(ctx: Context) -> Hashable | None:
    """The batch key of an input whose `x` stacks with others of the same shape (images, tabular rows);
    None for text (the forward closes over its own token ids)."""
    if ctx.inputs.tokens:
        return None
    return tuple(ctx.x.shape)


def explain_batch(explainer: Explainer[Any], model: Model, raws: Sequence[RawInput], params: Any, *,
                  target: int | str | None = None, top_k: int = 5, progress: Progress | None = None,
                  max_map_side: int | None = None, max_batch_elements: int | None = None,
                  quality: FaithfulnessOptions | None = None) -> list[Explanation]:
    """Explain every input with one method: each explanation as `Explainer.explain` gives it, with
    `details.batched: {"inputs": k}` where k inputs were attributed together (1: alone).

    Progress runs over the inputs; `timing_ms.attribute` of an input attributed with others is its
    share of the group's time.
    """
    explainer.check_model(model)
    n = len(raws)
    sink: Progress = progress or (lambda _fraction: None)
    with model.explaining():
        calls = [explainer.open(model, raw, params, target=target, top_k=top_k, progress=None,
                                max_map_side=max_map_side, max_batch_elements=max_batch_elements) for raw in raws]
        groups: dict[Hashable, list[int]] = {}
        alone: list[int] = []
        for i, call in enumerate(calls):
            key = explainer.batch_key(call.ctx, params)
            (alone.append(i) if key is None else groups.setdefault(key, []).append(i))
        order = [*groups.values(), *([i] for i in alone)]
        out: dict[int, Explanation] = {}
        done = 0
        for members in order:
            share = Share(sink, done, n, size=len(members))
            for i in members:
                calls[i].ctx.set_progress(share)
            t0 = time.perf_counter()
            results = _attribute(explainer, [calls[i] for i in members], params, batched=len(members) > 1)
            each_ms = (time.perf_counter() - t0) * 1e3 / len(members)
            for i, result in zip(members, results):
                result.details["batched"] = {"inputs": len(members)}
                out[i] = explainer.close(calls[i], result, quality, attribute_ms=each_ms)
            done += len(members)
            sink(done / n)
    return [out[i] for i in range(n)]


def _attribute(explainer: Explainer[Any], calls: Sequence[Call], params: Any, *,
               batched: bool) -> list[Attribution]:
    if not batched:
        return [explainer.attribute(calls[0].ctx, params)]
    ctxs = [c.ctx for c in calls]
    try:
        return explainer._attribute_batch(ctxs, params)
    except BudgetExhausted as exc:
        raise explainer.budget_too_small(exc, sum(c.evaluations for c in ctxs)) from None
