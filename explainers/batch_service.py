"""Several inputs per request (`inputs: [...]`): every input checked before any work, then one method
explains them all in shared batches (`explainers.batching`). The body is the contract's
`BatchExplanation`: `{"model_id", "method", "explanations": [Explanation, ...], "timing_ms"}`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from explainers.base import Explainer, Progress, resolve_target
from explainers.batching import explain_batch
from explainers.errors import InvalidInput, PayloadTooLarge, ServiceError
from explainers.evaluation.localisation import located
from explainers.inputs import probe_image
from explainers.models.manifest import Manifest
from explainers.params import Params, parse_params
from explainers.serialize import OutputOptions, render, to_payload

if TYPE_CHECKING:
    from explainers.service import Checked, ExplanationService

T = TypeVar("T")


@contextmanager
def at_input(index: int) -> Iterator[None]:
    """A service error raised within the block says which input it is about: `details.input_index`."""
    try:
        yield
    except ServiceError as exc:
        exc.message = f"inputs[{index}]: {exc.message}"
        exc.args = (exc.message,)
        exc.details = {**exc.details, "input_index": index} if isinstance(exc.details, dict) \
            else {"input_index": index, **({"details": exc.details} if exc.details is not None else {})}
        raise


def each(items: Sequence[Any], work: Callable[[Any], T]) -> list[T]:
    """`work` on every item, an error naming the item's index."""
    out = []
    for i, item in enumerate(items):
        with at_input(i):
            out.append(work(item))
    return out


def check_count(service: ExplanationService, n: int) -> None:
    """1 to `max_inputs` inputs."""
    limit = service.limits.max_inputs
    if n == 0:
        raise InvalidInput(f"inputs is empty: send 1 to {limit} inputs (or one `input`)", code="empty_inputs",
                           details={"max_inputs": limit})
    if n > limit:
        raise InvalidInput(f"{n} inputs, more than the {limit} one request may explain", code="too_many_inputs",
                           details={"inputs": n, "max_inputs": limit})


def check_totals(service: ExplanationService, manifest: Manifest, inputs: Sequence[Mapping[str, Any]]) -> None:
    """The whole list within the total pixel and character limits (from the images' headers: no decoding)."""
    limits = service.limits
    if manifest.image is not None:
        pixels = 0
        for item in inputs:
            width, height = probe_image(item["image"], max_pixels=limits.max_image_pixels)
            pixels += width * height
        if pixels > limits.max_inputs_pixels:
            raise PayloadTooLarge(f"the inputs have {pixels} pixels in all, more than the limit of "
                                  f"{limits.max_inputs_pixels}", code="inputs_too_large",
                                  details={"pixels": pixels, "max_inputs_pixels": limits.max_inputs_pixels})
    if manifest.text is not None:
        chars = sum(len(item["text"]) for item in inputs)
        if chars > limits.max_inputs_chars:
            raise PayloadTooLarge(f"the inputs have {chars} characters in all, more than the limit of "
                                  f"{limits.max_inputs_chars}", code="inputs_too_large",
                                  details={"chars": chars, "max_inputs_chars": limits.max_inputs_chars})


def check_request(service: ExplanationService, method: str, model_id: str, params: Mapping[str, Any] | None,
                  target: int | str | None, n: int) -> tuple[type[Explainer[Any]], Manifest, Params]:
    """The checks of what the inputs share: their count, the method on the model, its params, the target."""
    check_count(service, n)
    cls, manifest = service.method_for(method, model_id)
    parsed = parse_params(cls.Params, dict(params) if params is not None else None)
    if target is not None:
        resolve_target(target, manifest.labels, 0)
    return cls, manifest, parsed


def check_regions(manifest: Manifest, regions: Sequence[Mapping[str, Any] | None] | None) -> None:
    for i, region in enumerate(regions or ()):
        if region is not None and manifest.image is None:
            with at_input(i):
                raise InvalidInput("a region (mask or box) applies to image inputs only", code="invalid_region")


def check_inputs(service: ExplanationService, method: str, model_id: str, payloads: Sequence[Mapping[str, Any]],
                 params: Mapping[str, Any] | None, target: int | str | None,
                 regions: Sequence[Mapping[str, Any] | None] | None = None) -> list[Checked]:
    """Every check a queued request of several inputs must pass, from the manifest and the inputs' headers:
    each input's `Checked`."""
    from explainers.service import Checked

    cls, manifest, parsed = check_request(service, method, model_id, params, target, len(payloads))
    checked = each(payloads, lambda payload: service.check_input(manifest, payload))
    check_totals(service, manifest, checked)
    check_regions(manifest, regions)
    return [Checked(cls, manifest, parsed, target, c) for c in checked]


def explain_inputs(service: ExplanationService, method: str, model_id: str, payloads: Sequence[Mapping[str, Any]],
                   *, target: int | str | None = None, params: Mapping[str, Any] | None = None,
                   output: OutputOptions | None = None, top_k: int = 5, progress: Progress | None = None,
                   regions: Sequence[Mapping[str, Any] | None] | None = None,
                   in_job: bool = False) -> dict[str, Any]:
    """Several inputs explained with one method: each explanation as a single-input call gives it, with
    `details.batched`; a bad input anywhere fails the request (`details.input_index`) before any work."""
    t0 = time.perf_counter()
    cls, manifest, parsed = check_request(service, method, model_id, params, target, len(payloads))
    check_totals(service, manifest, each(payloads, lambda payload: service.check_input(manifest, payload)))
    check_regions(manifest, regions)
    model = service.registry.get(model_id)
    raws = each(payloads, lambda payload: service.decode_input(model, payload))
    masks: list[np.ndarray | None] = [None] * len(raws)
    for i, region in enumerate(regions or ()):
        if region is not None:
            with at_input(i):
                masks[i] = service.region_mask(model, raws[i], region)
    options = output or OutputOptions()
    quality = options.quality
    if quality is not None and not in_job:
        each(raws, lambda raw: service.check_quality_cost(model, raw, quality))
    t1 = time.perf_counter()
    explanations = explain_batch(cls(), model, raws, parsed, target=target, top_k=top_k, progress=progress,
                                 max_map_side=service.limits.max_map_side,
                                 max_batch_elements=service.limits.max_batch_elements, quality=options.quality)
    t2 = time.perf_counter()
    bodies = []
    for expl, mask in zip(explanations, masks):
        if mask is not None:
            expl.details["localisation"] = located(expl.attribution, mask, options.pointing_tolerance)
        t = time.perf_counter()
        body = to_payload(expl, render(expl, options), options.attribution)
        body["timing_ms"]["render"] = (time.perf_counter() - t) * 1e3
        body["timing_ms"]["total"] = sum(body["timing_ms"].values())
        bodies.append(body)
    t3 = time.perf_counter()
    return {"model_id": model_id, "method": method, "explanations": bodies,
            "timing_ms": {"decode": (t1 - t0) * 1e3, "explain": (t2 - t1) * 1e3, "render": (t3 - t2) * 1e3,
                          "total": (t3 - t0) * 1e3}}
