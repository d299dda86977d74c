"""Base of the black-box methods: they call only `ctx.predict` (probabilities)."""

from __future__ import annotations

from explainers.base import Explainer
from explainers.params import P
from explainers.types import Execution, Modality, Requires

ALL_MODALITIES = frozenset({Modality.IMAGE, Modality.TEXT, Modality.TABULAR})


class PerturbationExplainer(Explainer[P]):
    """A method that needs only predictions, runs as a job, and reports progress."""

    contrastive = True
    execution = Execution.ASYNC
    requires = Requires.PREDICTIONS
    needs_module = False
    signed = True
