"""Model-level requests: every check a global method's request passes before it is queued, and the run.

A request body is `{"inputs": [input, ...] | null, "input": input | null, "target": class | null,
"params": {...}}`: `inputs` a sample set (methods that take one; default: the bundle's own), `input`
one input (feature inversion). `ExplanationService` mixes this in.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from explainers.base import Progress
from explainers.errors import InvalidInput, MethodNotSupported
from explainers.global_base import GlobalExplainer
from explainers.global_payload import model_payload
from explainers.methods import get_global_method, global_methods
from explainers.models.handle import BundleModel, RawInput
from explainers.models.manifest import Manifest
from explainers.models.protocol import Model
from explainers.models.registry import ModelRegistry
from explainers.models.samples import bundle_samples
from explainers.params import Params, parse_params
from explainers.types import Takes


@dataclass
class PreparedGlobal:
    method: type[GlobalExplainer[Any]]
    model: Model
    params: Params
    samples: list[RawInput] | None
    raw: RawInput | None
    target: int | str | None


class GlobalRequests:
    """The global-method half of the explanation service."""

    registry: ModelRegistry
    MAX_SAMPLES = 4096

    def decode_input(self, model: Model, payload: Mapping[str, Any]) -> RawInput:
        raise NotImplementedError

    def global_methods_for(self, manifest: Manifest) -> list[str]:
        """The global methods that can explain this model."""
        return [name for name, cls in global_methods().items() if cls.refusal(manifest) is None]

    def prepare_global(self, method: str, model_id: str, body: Mapping[str, Any]) -> PreparedGlobal:
        """Check a model-level request: the method's scope, the model, params, input or sample set, target."""
        cls = get_global_method(method)
        manifest = self.registry.manifest(model_id)
        refusal = cls.refusal(manifest)
        if refusal is not None:
            raise MethodNotSupported(refusal, details={
                "modalities": sorted(m.value for m in cls.modalities),
                "source": "remote" if manifest.remote is not None else "local",
                "global_methods_for_model": self.global_methods_for(manifest)})
        params = parse_params(cls.Params, body.get("params"))
        inputs, one, target = body.get("inputs"), body.get("input"), body.get("target")
        if one is not None and cls.takes is not Takes.INPUT:
            raise InvalidInput(f"method {method!r} explains the model from {cls.takes.value}: send no 'input'",
                               code="input_not_accepted", details={"takes": cls.takes.value})
        if inputs is not None and cls.takes is not Takes.SAMPLES:
            raise InvalidInput(f"method {method!r} takes no sample set: send no 'inputs'",
                               code="samples_not_accepted", details={"takes": cls.takes.value})
        if one is None and cls.takes is Takes.INPUT:
            raise InvalidInput(f"method {method!r} needs an 'input'", code="input_required",
                               details={"takes": cls.takes.value})
        model = self.registry.get(model_id)
        raw = self.decode_input(model, one) if one is not None else None
        samples = self.global_samples(model, inputs) if cls.takes is Takes.SAMPLES else None
        cls.check(model, params, target)
        return PreparedGlobal(cls, model, params, samples, raw, target)

    def global_samples(self, model: Model, inputs: list[Mapping[str, Any]] | None) -> list[RawInput]:
        """The sample set sent (1 to MAX_SAMPLES inputs of the model's modality), else the bundle's own."""
        if inputs is not None:
            if not inputs:
                raise InvalidInput("the sample set 'inputs' is empty: send inputs, or none for the bundle's own",
                                   code="empty_samples")
            if len(inputs) > self.MAX_SAMPLES:
                raise InvalidInput(f"at most {self.MAX_SAMPLES} sample inputs, not {len(inputs)}",
                                   code="too_many_samples", details={"max": self.MAX_SAMPLES})
            return [self.decode_input(model, i) for i in inputs]
        assert isinstance(model, BundleModel)  # local and remote models both come from bundles
        samples = bundle_samples(model)
        if not samples:
            raise InvalidInput(f"model {model.id!r} ships no sample set: send sample inputs", code="no_samples")
        return samples

    def explain_model(self, method: str, model_id: str, body: Mapping[str, Any],
                      progress: Progress | None = None) -> dict[str, Any]:
        """Run a global method; the contract's `GlobalExplanation` body."""
        t0 = time.perf_counter()
        prepared = self.prepare_global(method, model_id, body)
        t1 = time.perf_counter()
        expl = prepared.method().explain_model(prepared.model, prepared.params, samples=prepared.samples,
                                               raw=prepared.raw, target=prepared.target, progress=progress)
        t2 = time.perf_counter()
        payload = model_payload(expl)
        payload["timing_ms"].update({"decode": (t1 - t0) * 1e3, "render": (time.perf_counter() - t2) * 1e3,
                                     "total": (time.perf_counter() - t0) * 1e3})
        return payload
