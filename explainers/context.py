"""Per-call state of an explanation: the prepared input, the target, the score, budgets and progress."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
from torch import nn

from explainers.errors import InvalidInput, InvalidParams, InvalidTarget
from explainers.models.handle import LocalModel, ModelInput
from explainers.models.protocol import Model
from explainers.models.segmentation import check_score
from explainers.params import Params as BaseParams
from explainers.sizing import bounded_batch, default_batch_size
from explainers.targets import SharedEvaluations, Target, digest
from explainers.types import Prediction

Progress = Callable[[float], None]
# A progress callback with `wants_error = True` is also given the method's current error estimate
# (`progress(fraction, error=...)`): a job shows it while it runs.


class Share:
    """The progress of part `index` of `parts` equal parts of a call (`size` parts from `index` on), passed
    on to `sink` as the whole's fraction (with the error estimate, where the sink wants it)."""

    def __init__(self, sink: Progress, index: int, parts: int, size: int = 1) -> None:
        self.sink, self.index, self.parts, self.size = sink, index, max(1, parts), size
        self.wants_error = bool(getattr(sink, "wants_error", False))

    def __call__(self, fraction: float, error: float | None = None) -> None:
        whole = min(1.0, (self.index + self.size * fraction) / self.parts)
        if self.wants_error:
            self.sink(whole, error=error)  # type: ignore[call-arg]
        else:
            self.sink(whole)


class ModelAccess:
    """The local model and its torch module, for the methods that read them (`needs_module`)."""

    model: Model

    @property
    def local(self) -> LocalModel:
        """The local model of a method with `needs_module` (`Explainer.explain` refuses others)."""
        assert isinstance(self.model, LocalModel), "only methods with needs_module read the module"
        return self.model

    @property
    def module(self) -> nn.Module:
        """The torch module of a local model."""
        return self.local.module


class Context(ModelAccess):
    """Per-call state handed to a method: the prepared input, the target, the score.

    `progress(fraction)` is called as work completes; it may raise to cancel the call.
    `batch_size` is the number of model inputs per forward pass: the params' `batch_size`
    where the method has one, else `default_batch_size` of the model. `autocast` is the
    bfloat16 autocast of `predict`, where the params ask for it. A budget (`max_evaluations`,
    `time_budget_s`) makes `predict` raise `BudgetExhausted` before a batch that would pass it;
    a method that can stop early catches it and returns its estimate so far (`stopped`).
    `error` is a method's current error estimate, where it has one.
    """

    def __init__(self, model: Model, inputs: ModelInput, target: int | str | None, params: BaseParams,
                 top_k: int, progress: Progress | None = None, max_batch_elements: int | None = None, *,
                 known: tuple[Prediction, list[Prediction]] | None = None, versus: int | None = None,
                 shared: SharedEvaluations | None = None) -> None:
        self.model = model
        self.versus, self.shared = versus, shared  # a contrastive class; what several targets share
        self.backward_passes = 0
        self.requested_batch_size = params.inputs_per_call or default_batch_size(model)
        self.batch_size = bounded_batch(self.requested_batch_size, inputs, max_batch_elements)
        self._sink: Progress = progress or (lambda _fraction: None)
        self.evaluations = 0
        self.autocast = params.bfloat16
        self.inputs = inputs
        self._requested = target
        check_score(model.manifest, params)
        self.segmentation = model.manifest.task == "segmentation"  # scores: summed region logits, always
        self.score_kind = "probabilities" if not self.segmentation and (
            params.score == "probabilities" or model.manifest.output == "probabilities") else "logits"
        self.top_k = top_k
        self._target: int | None = None
        self.predictions: list[Prediction] = []
        self.target_prediction: Prediction | None = None
        budget = params.budget
        self.max_evaluations = budget[0]
        self.deadline = None if budget[1] is None else time.monotonic() + budget[1]
        self.stopped: str | None = None
        self.error: float | None = None
        if known is not None:  # the target and predictions of this input, already computed (several methods)
            self.target_prediction, self.predictions = known[0], list(known[1])
            self._target = known[0].index

    def set_progress(self, progress: Progress) -> None:
        """Where progress goes from now on (several inputs: their share of the call)."""
        self._sink = progress

    def progress(self, fraction: float) -> None:
        """Report progress (and, to a sink that wants it, the current error estimate); may raise to cancel."""
        if getattr(self._sink, "wants_error", False):
            self._sink(fraction, error=self.error)  # type: ignore[call-arg]
        else:
            self._sink(fraction)

    @property
    def x(self) -> torch.Tensor:
        return self.inputs.x

    def layer(self, name: str | None) -> tuple[str, nn.Module]:
        """A layer by module name (default: the manifest's `cam_layer`), with its name."""
        name = name or self.model.manifest.cam_layer
        if not name:
            raise InvalidParams("the model has no default cam_layer: pass params.layer")
        return name, self.local.layer(name)

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """The model on a batch, counted in `evaluations` (a gradient method's forward-backward passes)."""
        self.evaluations += int(batch.shape[0])
        return self.inputs.forward(batch)

    def observe(self, outputs: torch.Tensor) -> int:
        """Record predictions from the outputs [1, K] of the unperturbed input; return the target."""
        if self._target is None:
            reported = self.inputs.reported
            probs = self.model.probabilities(outputs.detach()[0].float()) if reported is None else reported
            labels = self.model.labels
            if not bool(torch.isfinite(probs).all()):
                raise InvalidInput("the model's output for this input is not finite (inf or NaN): the input is "
                                   "outside the range the model computes in", code="non_finite_output")
            if probs.shape[0] != len(labels):
                raise ValueError(f"the model returned {probs.shape[0]} scores for {len(labels)} labels")
            target = resolve_target(self._requested, labels, int(probs.argmax()))
            top = probs.topk(min(self.top_k, len(labels)))
            self.predictions = [Prediction(int(i), labels[int(i)], float(s)) for s, i in zip(top.values, top.indices)]
            self.target_prediction = Prediction(target, labels[target], float(probs[target]))
            self._target = target
        return self._target

    def target(self) -> int:
        """The target class, running one inference forward if no method pass has observed it yet."""
        if self._target is None:
            with torch.inference_mode():  # not counted: a method that makes no pass of its own made none
                self.observe(self.inputs.forward(self.x))
        assert self._target is not None
        return self._target

    def room(self, n: int, per: int = 1) -> int:
        """How many of n items, each `per` evaluations, the budget still has room for (n if unbounded)."""
        if self.deadline is not None and time.monotonic() > self.deadline:
            return 0
        if self.max_evaluations is None:
            return n
        return max(0, min(n, (self.max_evaluations - self.evaluations) // max(per, 1)))

    def check_budget(self, more: int) -> None:
        """Raise `BudgetExhausted` if `more` evaluations would pass the budget, or its time is up."""
        if self.max_evaluations is not None and self.evaluations + more > self.max_evaluations:
            raise BudgetExhausted("evaluations")
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise BudgetExhausted("time")

    def predict(self, batch: torch.Tensor, batch_size: int, *, done: float = 0.0, share: float = 1.0,
                kind: str | None = None) -> torch.Tensor:
        """Scores [N, K] of native inputs [N, ...], `batch_size` rows per model call: probabilities, or
        the logits where the request explains logits (`kind` overrides: 'probabilities', 'logits').

        Progress moves from `done` to `done + share` over the batches.
        """
        assert self.inputs.native_forward is not None
        logits = self.segmentation or ((kind or self.score_kind) == "logits"
                                       and self.model.manifest.output != "probabilities")
        outs = []
        cache = None if self.shared is None else self.shared.scores
        n = batch.shape[0]
        device = self.model.device.type
        with torch.inference_mode(), torch.autocast(device, dtype=torch.bfloat16, enabled=self.autocast):
            for start in range(0, n, batch_size):
                chunk = batch[start:start + batch_size]
                key = None if cache is None else digest(chunk, "logits" if logits else "probabilities")
                if cache is not None and key in cache:  # another target of the request had these evaluated
                    outs.append(cache[key])
                    self.progress(min(1.0, done + share * min(n, start + batch_size) / n))
                    continue
                self.check_budget(chunk.shape[0])
                if chunk.dim() == 4:
                    chunk = chunk.contiguous(memory_format=torch.channels_last)
                out = self.inputs.native_forward(chunk).float()
                outs.append(out if logits else self.model.probabilities(out))
                if cache is not None and key is not None:
                    cache[key] = outs[-1]
                self.evaluations += chunk.shape[0]
                self.progress(min(1.0, done + share * min(n, start + batch_size) / n))
        return torch.cat(outs) if outs else torch.empty(0, len(self.model.labels))

    def target_probabilities(self, batch: torch.Tensor, batch_size: int, *, kind: str | None = None,
                             **kw: float) -> torch.Tensor:
        """The explained class's score (its probability, or its logit: see `predict`; less the versus
        class's, for a contrastive target) for each native input [N, ...] -> [N]."""
        return self.explained.of(self.predict(batch, batch_size, kind=kind, **kw))

    @property
    def explained(self) -> Target:
        """The explained score: the target class, or its difference to the versus class."""
        return Target(self.target(), self.versus)

    def score(self, outputs: torch.Tensor, target: Target | None = None) -> torch.Tensor:
        """The explained score of the target (`target`: another of the request's) for each row of a batch
        of outputs [B, K] -> [B]."""
        if self.score_kind == "probabilities" and self.model.manifest.output != "probabilities":
            outputs = self.model.probabilities(outputs)
        return (target or self.explained).of(outputs)


def resolve_target(requested: int | str | None, labels: list[str], top1: int) -> int:
    if requested is None:
        return top1
    if isinstance(requested, bool):
        raise InvalidTarget("target must be a class index, a label or null")
    if isinstance(requested, int):
        if not 0 <= requested < len(labels):
            raise InvalidTarget(f"target index {requested} is out of range 0..{len(labels) - 1}")
        return requested
    if isinstance(requested, str):
        if requested not in labels:
            raise InvalidTarget(f"unknown target label {requested!r}", details={"labels": labels[:50]})
        return labels.index(requested)
    raise InvalidTarget("target must be a class index, a label or null")


class BudgetExhausted(Exception):
    """The request's evaluation or time budget ran out (`Context.check_budget`)."""

    def __init__(self, which: str) -> None:
        super().__init__(which)
        self.which = which
