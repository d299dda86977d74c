"""Model-level evidence, run as jobs: the sanity check of methods on a model, and the evaluation table of
methods over a sample set (faithfulness, localisation, cost). No HTTP, no queue."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from explainers.base import Explainer, Progress
from explainers.context import Share
from explainers.errors import InvalidInput, InvalidParams, MethodNotSupported, ServiceError
from explainers.evaluation.faithfulness import FaithfulnessOptions
from explainers.evaluation.localisation import located
from explainers.evaluation.sanity import SanityOptions, sanity_check
from explainers.methods import get_method
from explainers.models.handle import BundleModel, LocalModel, RawInput
from explainers.models.samples import bundle_regions, bundle_samples
from explainers.params import Params, parse_params
from explainers.render.evaluation_chart import evaluation_chart_png
from explainers.sanity_store import SanityStore

if TYPE_CHECKING:
    from explainers.service import ExplanationService

SANITY_METHODS = ("gradcam", "saliency", "guided_backprop", "integrated_gradients")
EVALUATION_METHODS = ("gradcam", "saliency", "integrated_gradients", "occlusion", "attention_rollout",
                      "transformer_attribution")
MAX_METHODS = 8
MAX_SANITY_INPUTS = 16
MAX_EVALUATION_INPUTS = 256
FIGURES = ("deletion_auc", "insertion_auc", "morf_aopc", "lerf_aopc")


@dataclass
class SampleSet:
    raws: list[RawInput]
    regions: list[np.ndarray | None]
    origin: str  # "request inputs" or "bundle samples"
    digest: str


def _digest(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()[:16]


class Studies:
    """The model-level jobs over an `ExplanationService` (its registry, limits and input decoding)."""

    def __init__(self, service: ExplanationService) -> None:
        self.service = service

    # -- what both check before a job is queued -------------------------------------------------
    def methods(self, model_id: str, methods: Sequence[str] | None, params: Mapping[str, Mapping[str, Any]] | None,
                defaults: Sequence[str]) -> dict[str, tuple[type[Explainer[Any]], Params]]:
        """The methods asked for (else the defaults the model takes), each with its parsed params."""
        manifest = self.service.registry.manifest(model_id)
        if methods is None:
            methods = [m for m in defaults if get_method(m).refusal(manifest) is None]
        params = params or {}
        if not methods or len(methods) > MAX_METHODS or len(set(methods)) != len(methods):
            raise InvalidParams(f"methods: 1 to {MAX_METHODS} distinct names", code="invalid_methods")
        unknown = sorted(set(params) - set(methods))
        if unknown:
            raise InvalidParams(f"params for methods not asked for: {unknown}", code="invalid_methods")
        out = {}
        for name in methods:
            cls, _ = self.service.method_for(name, model_id)
            out[name] = (cls, parse_params(cls.Params, dict(params.get(name) or {})))
        return out

    def local_model(self, model_id: str, what: str) -> LocalModel:
        manifest = self.service.registry.manifest(model_id)
        if manifest.remote is not None:
            raise MethodNotSupported(f"model {model_id!r} runs on a model server: {what} needs its layers",
                                     details={"source": "remote"})
        model = self.service.registry.get(model_id)
        assert isinstance(model, LocalModel)
        return model

    def samples(self, model_id: str, inputs: Sequence[Mapping[str, Any]] | None, n: int, limit: int) -> SampleSet:
        """The inputs sent (each may carry a `box` or `mask`), else the first `n` of the bundle's samples
        (with their object masks where the bundle has them)."""
        model = self.bundle(model_id)
        if inputs:
            if len(inputs) > limit:
                raise InvalidInput(f"at most {limit} inputs", code="too_many_samples")
            raws: list[RawInput] = []
            regions: list[np.ndarray | None] = []
            for payload in inputs:
                data = {k: v for k, v in payload.items() if k not in ("box", "mask")}
                raw = self.service.decode_input(model, data)
                region = {k: payload[k] for k in ("box", "mask") if payload.get(k) is not None} or None
                raws.append(raw)
                regions.append(None if region is None else self.service.region_mask(model, raw, region))
            return SampleSet(raws, regions, "request inputs", _digest(list(inputs)))
        samples = bundle_samples(model)
        if not samples:
            raise InvalidInput(f"model {model_id!r} ships no sample set: send inputs", code="no_samples")
        masks = bundle_regions(model)
        n = min(n, len(samples))
        kept: list[np.ndarray | None] = list(masks[:n]) if masks is not None else [None] * n
        return SampleSet(samples[:n], kept, "bundle samples", f"bundle-{n}")

    def bundle(self, model_id: str) -> BundleModel:
        model = self.service.registry.get(model_id)
        assert isinstance(model, BundleModel)
        return model

    # -- the sanity check ------------------------------------------------------------------------
    def check_sanity(self, model_id: str, methods: Sequence[str] | None,
                     params: Mapping[str, Mapping[str, Any]] | None,
                     inputs: Sequence[Mapping[str, Any]] | None) -> list[str]:
        """Every check of a sanity request before it is queued; the methods it will run."""
        self.local_model(model_id, "the sanity check")
        chosen = self.methods(model_id, methods, params, SANITY_METHODS)
        if inputs and len(inputs) > MAX_SANITY_INPUTS:
            raise InvalidInput(f"at most {MAX_SANITY_INPUTS} inputs", code="too_many_samples")
        if not inputs and not bundle_samples(self.bundle(model_id)):
            raise InvalidInput(f"model {model_id!r} ships no sample set: send inputs", code="no_samples")
        for payload in inputs or ():
            self.service.check_input(self.service.registry.manifest(model_id),
                                     {k: v for k, v in payload.items() if k not in ("box", "mask")})
        return list(chosen)

    def sanity(self, model_id: str, methods: Sequence[str] | None = None,
               params: Mapping[str, Mapping[str, Any]] | None = None,
               inputs: Sequence[Mapping[str, Any]] | None = None, n_inputs: int = 4, stages: int = 8,
               seed: int = 0, progress: Progress | None = None) -> dict[str, Any]:
        """The cascading randomisation test of each method; a result already computed for these weights
        and settings comes from the store (`cached: true`)."""
        t0 = time.perf_counter()
        model = self.local_model(model_id, "the sanity check")
        chosen = self.methods(model_id, methods, params, SANITY_METHODS)
        sample = self.samples(model_id, inputs, n_inputs, MAX_SANITY_INPUTS)
        store = SanityStore(model.state_dir)
        options = SanityOptions(stages=stages, seed=seed)
        results = []
        for i, (name, (cls, parsed)) in enumerate(chosen.items()):
            key = _digest([name, parsed.model_dump(mode="json"), sample.digest, stages, seed])
            hit = store.get(model_id, model.weights_hash, key)
            if hit is not None:
                results.append({**hit, "cached": True})
                continue
            share = None if progress is None else Share(progress, i, len(chosen))
            result = sanity_check(model, cls(), parsed, sample.raws, options, share)
            store.put(model_id, model.weights_hash, key, result)
            results.append({**result, "cached": False})
        return {"model_id": model_id, "weights_hash": model.weights_hash, "n_inputs": len(sample.raws),
                "origin": sample.origin, "methods": results, "seconds": round(time.perf_counter() - t0, 3)}

    def verdicts(self) -> dict[str, dict[str, str]]:
        """method -> {model id: verdict} for every local model with results for its current weights."""
        registry = self.service.registry
        store = SanityStore(registry.state_dir)
        out: dict[str, dict[str, str]] = {}
        for model_id in registry.ids():
            try:
                if registry.manifest(model_id).remote is not None:
                    continue
                found = store.verdicts(model_id, registry.weights_hash(model_id), registry.folder_of(model_id))
            except (ServiceError, OSError, ValueError):  # a broken bundle has no verdicts
                continue
            for method, verdict in found.items():
                out.setdefault(method, {})[model_id] = verdict
        return out

    # -- the evaluation table ---------------------------------------------------------------------
    def check_evaluation(self, model_id: str, methods: Sequence[str] | None,
                         params: Mapping[str, Mapping[str, Any]] | None,
                         inputs: Sequence[Mapping[str, Any]] | None) -> list[str]:
        chosen = self.methods(model_id, methods, params, EVALUATION_METHODS)
        manifest = self.service.registry.manifest(model_id)
        if inputs and len(inputs) > MAX_EVALUATION_INPUTS:
            raise InvalidInput(f"at most {MAX_EVALUATION_INPUTS} inputs", code="too_many_samples")
        if not inputs and not bundle_samples(self.bundle(model_id)):
            raise InvalidInput(f"model {model_id!r} ships no sample set: send inputs", code="no_samples")
        for payload in inputs or ():
            if manifest.image is None and (payload.get("box") is not None or payload.get("mask") is not None):
                raise InvalidInput("a region (mask or box) applies to image inputs only", code="invalid_region")
            self.service.check_input(manifest, {k: v for k, v in payload.items() if k not in ("box", "mask")})
        return list(chosen)

    def evaluate(self, model_id: str, methods: Sequence[str] | None = None,
                 params: Mapping[str, Mapping[str, Any]] | None = None,
                 inputs: Sequence[Mapping[str, Any]] | None = None, n_inputs: int = 16,
                 quality: FaithfulnessOptions | None = None, pointing_tolerance: int = 15,
                 progress: Progress | None = None) -> dict[str, Any]:
        """Each method over the sample set: the mean and standard error of every faithfulness figure (and of
        the random map's), of the localisation figures where the inputs have regions, of the time and the
        model evaluations per explanation; the table as a chart too."""
        t0 = time.perf_counter()
        chosen = self.methods(model_id, methods, params, EVALUATION_METHODS)
        sample = self.samples(model_id, inputs, n_inputs, MAX_EVALUATION_INPUTS)
        model = self.service.registry.get(model_id)
        options = quality or FaithfulnessOptions()
        limits = self.service.limits
        rows, total = [], len(chosen) * len(sample.raws)
        for i, (name, (cls, parsed)) in enumerate(chosen.items()):
            per: dict[str, list[float]] = {}
            failures: list[str] = []
            for j, (raw, region) in enumerate(zip(sample.raws, sample.regions)):
                share = None if progress is None else Share(progress, i * len(sample.raws) + j, total)
                try:
                    expl = cls().explain(model, raw, parsed, progress=share, max_map_side=limits.max_map_side,
                                         max_batch_elements=limits.max_batch_elements, quality=options)
                except InvalidParams as exc:  # a budget too small for this input: counted, not fatal
                    failures.append(exc.message)
                    continue
                figures = expl.details["quality"]
                for which, prefix in (("map", ""), ("random", "random_")):
                    for k, v in figures.get(which, {}).items():
                        per.setdefault(prefix + k, []).append(float(v))
                per.setdefault("ms_per_explanation", []).append(expl.timing_ms["attribute"])
                spent = int(expl.details.get("model_evaluations", 0)) - int(figures["model_evaluations"])
                per.setdefault("evaluations_per_explanation", []).append(float(spent))
                if region is not None:
                    loc = located(expl.attribution, region, pointing_tolerance)
                    per.setdefault("pointing_game", []).append(float(loc["pointing_hit"]))
                    per.setdefault("energy_share", []).append(float(loc["energy_share"]))
                    per.setdefault("positive_share", []).append(float(loc["positive_share"]))
            row: dict[str, Any] = {"method": name, "n": len(sample.raws) - len(failures),
                                   "failures": len(failures)}
            if failures:
                row["failure"] = failures[0]
            row.update({k: {"mean": float(np.mean(v)),
                            "sem": float(np.std(v, ddof=1) / np.sqrt(len(v))) if len(v) > 1 else None}
                        for k, v in per.items()})
            rows.append(row)
        title = f"{model_id}: {len(sample.raws)} {sample.origin}, {options.steps} steps, fill {options.fill}"
        chart = evaluation_chart_png(rows, title)
        return {"model_id": model_id, "weights_hash": model.weights_hash if isinstance(model, LocalModel) else None,
                "n_inputs": len(sample.raws), "origin": sample.origin,
                "with_regions": sum(r is not None for r in sample.regions),
                "settings": {"steps": options.steps, "fill": options.fill, "insertion_start": options.insertion_start,
                             "metrics": list(options.metrics), "pointing_tolerance": pointing_tolerance,
                             "seed": options.seed},
                "rows": rows, "chart_png": base64.b64encode(chart).decode("ascii"),
                "seconds": round(time.perf_counter() - t0, 3)}
