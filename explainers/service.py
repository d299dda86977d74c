"""The explanation service: request dicts in, contract payloads out. No HTTP, no queue."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from explainers.base import Context, Explainer, Progress, resolve_target
from explainers.batch_service import check_inputs, explain_inputs
from explainers.context import Share
from explainers.errors import InvalidInput, InvalidParams, InvalidTarget, MethodNotSupported, ModelLoadError
from explainers.evaluation.agreement import agreement
from explainers.evaluation.faithfulness import FaithfulnessOptions, evaluations_needed
from explainers.evaluation.localisation import located
from explainers.global_service import GlobalRequests
from explainers.inputs import b64decode, decode_image, parse_features, probe_image, validate_text
from explainers.methods import all_methods, get_method, local_methods
from explainers.models.handle import LocalModel, RawInput
from explainers.models.manifest import Manifest
from explainers.models.protocol import Model
from explainers.models.registry import ModelRegistry
from explainers.models.samples import bundle_samples
from explainers.models.segmentation import check_score, scored_params
from explainers.params import Params, parse_params
from explainers.pattern_store import compute_patterns, store_patterns
from explainers.regions import decode_region, split_target
from explainers.serialize import OutputOptions, decode_array, render, to_payload
from explainers.several_targets import explain_targets, several_targets, targets_body
from explainers.studies import Studies
from explainers.targets import parse_targets
from explainers.types import Modality, Prediction, Target


@dataclass(frozen=True)
class Limits:
    max_image_pixels: int = 40_000_000
    max_text_chars: int = 100_000
    max_top_k: int = 100
    max_map_side: int | None = 1024  # long side of maps and pictures of larger images
    max_batch_elements: int | None = 1 << 24  # batch x input size of one forward pass
    max_sync_quality_evaluations: int = 10_000  # a sync request's faithfulness figures may cost this many
    max_inputs: int = 32  # inputs of one request (`inputs: [...]`)
    max_inputs_pixels: int = 40_000_000  # their pixels in all (the service: XAI_MAX_IMAGE_PIXELS)
    max_inputs_chars: int = 100_000  # their characters in all (the service: XAI_MAX_TEXT_CHARS)


@dataclass(frozen=True)
class Checked:
    """A request checked against its method and the model's manifest, without loading the weights.

    `input` is what a job carries: `{"image": bytes}` (its header read, no pixel decoded),
    `{"text": str}` or `{"features": [float, ...]}` in the model's feature order.
    """

    method: type[Explainer[Any]]
    manifest: Manifest
    params: Params
    target: Target
    input: dict[str, Any]


@dataclass
class Prepared:
    """A request checked against its method and model, ready to run."""

    method: type[Explainer[Any]]
    model: Model
    raw: RawInput
    params: Params


class ExplanationService(GlobalRequests):
    def __init__(self, registry: ModelRegistry, limits: Limits | None = None) -> None:
        self.registry = registry
        self.limits = limits or Limits()
        self.studies = Studies(self)

    # -- discovery ------------------------------------------------------------------------------
    def methods_info(self) -> list[dict[str, Any]]:
        verdicts = self.studies.verdicts()
        return [{"name": name, "scope": cls.scope.value, "takes": cls.takes.value, "execution": cls.execution.value,
                 "modalities": sorted(m.value for m in cls.modalities), "requires": cls.requires.value,
                 "local_only": cls.needs_module, "signed": cls.signed, "contrastive": cls.contrastive,
                 "description": cls.summary(),
                 "params": cls.Params.model_json_schema(), "sanity": verdicts.get(name, {})}
                for name, cls in all_methods().items()]

    def methods_for(self, manifest: Manifest) -> list[str]:
        """The local methods that can explain this model's inputs (its modality; only black-box ones on a
        model server)."""
        return [name for name, cls in local_methods().items() if cls.refusal(manifest) is None]

    def models_info(self) -> list[dict[str, Any]]:
        return [self.model_info(i) for i in self.registry.names()]

    def model_info(self, model_id: str) -> dict[str, Any]:
        """ModelInfo of any bundle, a broken one too (with its error)."""
        if model_id not in self.registry.ids():
            return {**self.registry.info(model_id, []), "global_methods": []}
        manifest = self.registry.manifest(model_id)
        return {**self.registry.info(model_id, self.methods_for(manifest)),
                "global_methods": self.global_methods_for(manifest)}

    # -- requests -------------------------------------------------------------------------------
    @staticmethod
    def _input_kind(manifest: Manifest, payload: Mapping[str, Any]) -> str:
        kinds = [k for k in ("image", "text", "features") if payload.get(k) is not None]
        if len(kinds) != 1:
            raise InvalidInput("input must have exactly one of 'image', 'text' or 'features'")
        kind = kinds[0]
        if kind != manifest.modality.value and not (kind == "features" and manifest.modality is Modality.TABULAR):
            raise InvalidInput(f"model {manifest.id!r} takes {manifest.modality.value} input, not {kind}",
                               code="wrong_input_kind")
        return kind

    @staticmethod
    def _features(manifest: Manifest, raw: Any) -> Any:
        tab = manifest.tabular
        assert tab is not None
        categorical = {f.name: f.values for f in tab.features if f.kind == "categorical" and f.values}
        return parse_features(raw, [f.name for f in tab.features], categorical)

    def decode_input(self, model: Model, payload: Mapping[str, Any]) -> RawInput:
        """Contract input (exactly one of image / text / features) -> decoded raw input."""
        kind = self._input_kind(model.manifest, payload)
        if kind == "image":
            data = payload["image"]
            raw_bytes = data if isinstance(data, bytes) else b64decode(str(data))
            return RawInput(image=decode_image(raw_bytes, max_pixels=self.limits.max_image_pixels))
        if kind == "text":
            return RawInput(text=validate_text(payload["text"], max_chars=self.limits.max_text_chars))
        return RawInput(features=self._features(model.manifest, payload["features"]))

    def method_for(self, method: str, model_id: str) -> tuple[type[Explainer[Any]], Manifest]:
        cls = get_method(method)
        manifest = self.registry.manifest(model_id)
        refusal = cls.refusal(manifest)
        if refusal is not None:
            raise MethodNotSupported(refusal, details={
                "modalities": sorted(m.value for m in cls.modalities), "requires": cls.requires.value,
                "source": "remote" if manifest.remote is not None else "local",
                "methods_for_model": self.methods_for(manifest)})
        state = self.registry.state(model_id)
        if state["status"] == "error":
            raise ModelLoadError(f"model {model_id!r} failed to load: {state['error']}")
        return cls, manifest

    def check(self, method: str, model_id: str, payload: Mapping[str, Any], params: Mapping[str, Any] | None,
              target: Target) -> Checked:
        """Every check a queued request must pass, from the manifest and the input's header: no weights load."""
        cls, manifest = self.method_for(method, model_id)
        parsed = scored_params(manifest, parse_params(cls.Params, dict(params) if params is not None else None))
        klass, region = self.target_of(manifest, target)
        targets = parse_targets(klass, manifest.labels)
        if targets is None and klass is not None:
            resolve_target(klass, manifest.labels, 0)
        if targets is not None and any(t.versus is not None for t in targets) and not cls.contrastive:
            raise InvalidTarget(f"method {method!r} does not explain a contrastive (versus) target")
        checked = self.check_input(manifest, payload)
        if region is not None:
            width, height = probe_image(checked["image"], max_pixels=self.limits.max_image_pixels)
            decode_region(region, (height, width), max_pixels=self.limits.max_image_pixels)
        return Checked(cls, manifest, parsed, target, checked)

    @staticmethod
    def target_of(manifest: Manifest, target: Target) -> tuple[Any, dict[str, Any] | None]:
        """The classes of a request's target (one, a list, or `{"class", "versus"}`: `explainers.targets`) and
        its region, which only a segmentation model takes."""
        klass, region = split_target(target)
        if region is not None and manifest.task != "segmentation":
            raise InvalidTarget(f"a target with a region (box or mask) explains a segmentation model; model "
                                f"{manifest.id!r} is a classifier: send the class alone")
        return klass, region

    def with_target_region(self, model: Model, raw: RawInput, target: Target) -> tuple[Any, RawInput]:
        """The target's classes, and the input with the target's region decoded at the image-as-sent size."""
        klass, region = self.target_of(model.manifest, target)
        if region is None:
            return klass, raw
        if raw.image is None:
            raise InvalidInput("a target region applies to image inputs only", code="invalid_region")
        mask = decode_region(region, raw.image.shape[:2], max_pixels=self.limits.max_image_pixels)
        return klass, replace(raw, region=mask)

    def check_input(self, manifest: Manifest, payload: Mapping[str, Any]) -> dict[str, Any]:
        kind = self._input_kind(manifest, payload)
        if kind == "image":
            data = payload["image"]
            raw_bytes = data if isinstance(data, bytes) else b64decode(str(data))
            probe_image(raw_bytes, max_pixels=self.limits.max_image_pixels)
            return {"image": raw_bytes}
        if kind == "text":
            return {"text": validate_text(payload["text"], max_chars=self.limits.max_text_chars)}
        return {"features": [float(v) for v in self._features(manifest, payload["features"])]}

    def prepare(self, method: str, model_id: str, payload: Mapping[str, Any],
                params: Mapping[str, Any] | None, raw: RawInput | None = None) -> Prepared:
        """Every check a request must pass before it runs, with the model loaded and the input decoded
        (`raw`: decoded already)."""
        cls, _ = self.method_for(method, model_id)
        parsed = parse_params(cls.Params, dict(params) if params is not None else None)
        model = self.registry.get(model_id)
        return Prepared(cls, model, raw if raw is not None else self.decode_input(model, payload), parsed)

    def explain(self, method: str, model_id: str, payload: Mapping[str, Any], *, target: Target = None,
                params: Mapping[str, Any] | None = None, output: OutputOptions | None = None,
                top_k: int = 5, progress: Progress | None = None, region: Mapping[str, Any] | None = None,
                in_job: bool = False, known: tuple[Prediction, list[Prediction]] | None = None,
                raw: RawInput | None = None) -> dict[str, Any]:
        """One explanation as the contract's body. `region`: where the object is (localisation figures);
        `in_job`: a worker runs it (no limit on the faithfulness figures' cost); `known` and `raw`: the
        target and predictions, and the decoded input, where several methods share them."""
        t0 = time.perf_counter()
        prepared = self.prepare(method, model_id, payload, params, raw)
        check_score(prepared.model.manifest, prepared.params)
        klass, prepared.raw = self.with_target_region(prepared.model, prepared.raw, target)
        options = output or OutputOptions()
        if options.quality is not None and not in_job:
            self.check_quality_cost(prepared.model, prepared.raw, options.quality)
        mask = self.region_mask(prepared.model, prepared.raw, region) if region else None
        targets, seen = several_targets(prepared.model, prepared.raw, klass, top_k, known)
        if targets is not None and (len(targets) > 1 or isinstance(klass, list)):
            t1 = time.perf_counter()
            expls, shared = explain_targets(
                prepared.method(), prepared.model, prepared.raw, prepared.params, targets, top_k=top_k, known=seen,
                progress=progress, max_map_side=self.limits.max_map_side,
                max_batch_elements=self.limits.max_batch_elements, quality=options.quality)
            return targets_body(expls, shared, options, mask, t0=t0, t1=t1)
        versus = None
        if targets is not None:
            klass, versus = targets[0].index, targets[0].versus
        t1 = time.perf_counter()
        expl = prepared.method().explain(prepared.model, prepared.raw, prepared.params, target=klass, top_k=top_k,
                                         progress=progress, max_map_side=self.limits.max_map_side,
                                         max_batch_elements=self.limits.max_batch_elements, known=known,
                                         quality=options.quality, versus=versus)
        if mask is not None:
            expl.details["localisation"] = located(expl.attribution, mask, options.pointing_tolerance)
        t2 = time.perf_counter()
        rendered = render(expl, options)
        body = to_payload(expl, rendered, options.attribution)
        t3 = time.perf_counter()
        body["timing_ms"].update({"decode": (t1 - t0) * 1e3, "explain": (t2 - t1) * 1e3,
                                  "render": (t3 - t2) * 1e3, "total": (t3 - t0) * 1e3})
        return body

    def explain_inputs(self, method: str, model_id: str, payloads: Sequence[Mapping[str, Any]], *,
                       target: int | str | None = None, params: Mapping[str, Any] | None = None,
                       output: OutputOptions | None = None, top_k: int = 5, progress: Progress | None = None,
                       regions: Sequence[Mapping[str, Any] | None] | None = None,
                       in_job: bool = False) -> dict[str, Any]:
        """Several inputs explained with one method in shared batches (`explainers.batch_service`)."""
        return explain_inputs(self, method, model_id, payloads, target=target, params=params, output=output,
                              top_k=top_k, progress=progress, regions=regions, in_job=in_job)

    def check_inputs(self, method: str, model_id: str, payloads: Sequence[Mapping[str, Any]],
                     params: Mapping[str, Any] | None, target: int | str | None,
                     regions: Sequence[Mapping[str, Any] | None] | None = None) -> list[Checked]:
        """Every check a queued request of several inputs must pass: each input's `Checked`."""
        return check_inputs(self, method, model_id, payloads, params, target, regions)

    MAX_METHODS = 8

    def explain_many(self, methods: Sequence[str], model_id: str, payload: Mapping[str, Any], *,
                     params: Mapping[str, Mapping[str, Any]] | None = None, target: Target = None,
                     output: OutputOptions | None = None, top_k: int = 5, top_percent: float = 10.0,
                     region: Mapping[str, Any] | None = None, progress: Progress | None = None,
                     in_job: bool = False) -> dict[str, Any]:
        """Several methods on one input: each explanation, and how much their maps agree.

        The target and the predictions come from one forward pass, which every method then shares.
        """
        t0 = time.perf_counter()
        params = params or {}
        self.check_methods(methods, params)
        for name in methods:  # every check first: a bad method or param fails the whole request at once
            self.method_for(name, model_id)
            parse_params(get_method(name).Params, dict(params.get(name) or {}))
        model = self.registry.get(model_id)
        klass, raw = self.with_target_region(model, self.decode_input(model, payload), target)
        self.check_compared(target)
        known = self.known(model, raw, klass, top_k)
        bodies, maps = [], {}
        for i, name in enumerate(methods):
            share = Share(progress, i, len(methods)) if progress is not None else None
            body = self.explain(name, model_id, payload, target=known[0].index, params=params.get(name),
                                output=output, top_k=top_k, progress=share, region=region, in_job=in_job,
                                known=known, raw=raw)
            bodies.append(body)
            maps[name] = decode_array(body["attribution"]) if body.get("attribution") else None
        with_maps = {k: v for k, v in maps.items() if v is not None}
        return {"model_id": model_id, "target": known[0].to_dict(), "predictions": [p.to_dict() for p in known[1]],
                "explanations": bodies, "agreement": agreement(with_maps, top_percent),
                "timing_ms": {"total": (time.perf_counter() - t0) * 1e3}}

    @staticmethod
    def check_compared(target: Target) -> None:
        """Several methods are compared on one class (and its region): not on a list, nor on a versus."""
        klass, _ = split_target(target)
        if klass is not None and not isinstance(klass, int | str):
            raise InvalidTarget("methods are compared on one class: send a class (index or label) or null, "
                                "not a list or a versus")

    def check_methods(self, methods: Sequence[str], params: Mapping[str, Any]) -> None:
        """A multi-method request's list: 2 to MAX_METHODS distinct names, params only for those."""
        if len(set(methods)) != len(methods) or not 2 <= len(methods) <= self.MAX_METHODS:
            raise InvalidParams(f"methods: 2 to {self.MAX_METHODS} distinct names", code="invalid_methods")
        unknown = sorted(set(params) - set(methods))
        if unknown:
            raise InvalidParams(f"params for methods not asked for: {unknown}", code="invalid_methods")
        for name in methods:
            get_method(name)

    def known(self, model: Model, raw: RawInput, target: int | str | None,
              top_k: int) -> tuple[Prediction, list[Prediction]]:
        """The target and the top predictions of an input, from one forward pass."""
        with model.lock:
            ctx = Context(model, model.prepare(raw), target, Params(), top_k)
            ctx.target()
        assert ctx.target_prediction is not None
        return ctx.target_prediction, ctx.predictions

    def check_quality_cost(self, model: Model, raw: RawInput, quality: FaithfulnessOptions) -> None:
        """A sync request whose faithfulness figures would cost more than the limit is a 422 (run it as a job)."""
        manifest, rows = model.manifest, 1
        if manifest.image is not None:
            n = manifest.image.size[0] * manifest.image.size[1]
        elif manifest.text is not None:
            assert raw.text is not None and model.tokenizer is not None
            n = len(model.tokenizer.tokenize(raw.text))
        else:
            n = len(model.feature_names)
            rows = min(quality.n_background, len(model.background) if model.background is not None else 1)
        cost = evaluations_needed(n, quality, rows)
        if cost > self.limits.max_sync_quality_evaluations:
            raise InvalidParams(f"the faithfulness figures would cost {cost} model evaluations, more than the "
                                f"{self.limits.max_sync_quality_evaluations} a synchronous request may spend: "
                                "send the request with ?async=true to run it as a job, or ask for fewer steps",
                                code="quality_too_costly",
                                details={"evaluations": cost, "limit": self.limits.max_sync_quality_evaluations,
                                         "hint": "?async=true"})

    def region_mask(self, model: Model, raw: RawInput, region: Mapping[str, Any]) -> np.ndarray:
        """The region of an image request as a mask of the image as sent."""
        if raw.image is None:
            raise InvalidInput("a region (mask or box) applies to image inputs only", code="invalid_region")
        return decode_region(region, raw.image.shape[:2], max_pixels=self.limits.max_image_pixels)

    # -- model-level jobs -------------------------------------------------------------------------
    MAX_SAMPLES = 4096

    def pattern_samples(self, model_id: str, inputs: Sequence[Mapping[str, Any]] | None) -> list[RawInput]:
        """The sample set patterns are computed from: the inputs sent, else the bundle's own samples."""
        manifest = self.registry.manifest(model_id)
        if manifest.remote is not None:
            raise MethodNotSupported(f"model {model_id!r} runs on a model server: patterns need its layers",
                                     details={"source": "remote"})
        model = self.registry.get(model_id)
        assert isinstance(model, LocalModel)
        if inputs:
            if len(inputs) > self.MAX_SAMPLES:
                raise InvalidInput(f"at most {self.MAX_SAMPLES} sample inputs", code="too_many_samples")
            return [self.decode_input(model, i) for i in inputs]
        samples = bundle_samples(model)
        if not samples:
            raise InvalidInput(f"model {model_id!r} ships no sample set: send sample inputs", code="no_samples")
        return samples

    def compute_patterns(self, model_id: str, inputs: Sequence[Mapping[str, Any]] | None = None,
                         progress: Progress | None = None) -> dict[str, Any]:
        """Compute and store PatternNet's patterns of a local model from a sample set."""
        samples = self.pattern_samples(model_id, inputs)
        model = self.registry.get(model_id)
        assert isinstance(model, LocalModel)
        t0 = time.perf_counter()
        with model.lock:
            patterns = compute_patterns(model, samples, "request inputs" if inputs else "bundle samples", progress)
        path = store_patterns(model, patterns)
        return {"model_id": model_id, "weights_hash": model.weights_hash, "n_samples": patterns.n_samples,
                "layers": len(patterns.layers), "origin": patterns.meta["origin"], "stored": path is not None,
                "seconds": round(time.perf_counter() - t0, 3)}

    def predict(self, model_id: str, payload: Mapping[str, Any], top_k: int = 5) -> dict[str, Any]:
        model = self.registry.get(model_id)
        inputs = model.prepare(self.decode_input(model, payload))
        with model.lock, torch.inference_mode():
            outputs = inputs.forward(inputs.x)
            probs = inputs.reported if inputs.reported is not None else model.probabilities(outputs)[0].float()
        top = probs.topk(min(top_k, len(model.labels)))
        return {"model_id": model_id, "predictions": [
            {"index": int(i), "label": model.labels[int(i)], "score": float(s)}
            for s, i in zip(top.values, top.indices)]}
