"""What every registered method declares, local or global: its name, modalities, execution, needs and
`Params`. `Explainer` (one input, `explainers.base`) and `GlobalExplainer` (the model,
`explainers.global_base`) build on it; the registry, `/methods` and the tests read these attributes.
"""

from __future__ import annotations

from typing import ClassVar, Generic

from explainers.models.manifest import Manifest
from explainers.params import P
from explainers.types import Execution, Modality, Requires, Scope, Takes


class Method(Generic[P]):
    """The declarations of a method. `scope` says what it explains: one input or the model; `takes`
    what a request gives it besides the model (one input, a sample set, or nothing).

    `needs_module`: the method reads the torch module (gradients, hooks, a layer's
    activations), so it runs only on local models; the one check is `refusal`.
    """

    name: ClassVar[str]
    modalities: ClassVar[frozenset[Modality]]
    scope: ClassVar[Scope] = Scope.LOCAL
    takes: ClassVar[Takes] = Takes.INPUT
    execution: ClassVar[Execution] = Execution.SYNC
    requires: ClassVar[Requires] = Requires.GRADIENTS
    needs_module: ClassVar[bool] = True
    Params: type[P]
    signed: ClassVar[bool] = True
    contrastive: ClassVar[bool] = False  # explains a score difference (`{"class": A, "versus": B}`)

    @classmethod
    def summary(cls) -> str:
        return (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""

    @classmethod
    def refusal(cls, manifest: Manifest) -> str | None:
        """Why this method cannot explain the model, or None when it can."""
        if manifest.modality not in cls.modalities:
            return f"method {cls.name!r} does not explain {manifest.modality.value} models"
        if cls.needs_module and manifest.remote is not None:
            return (f"method {cls.name!r} needs the model's gradients or layers; model {manifest.id!r} runs on a "
                    "model server, which gives only predictions")
        return None
