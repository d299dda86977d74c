"""The model randomisation test (Adebayo et al. 2018, "Sanity checks for saliency maps").

A copy of the model has its weighted layers re-initialised one after another from the top (the output
layer) down, cumulatively; the method explains the same inputs on every stage, and each stage's maps are
compared with the trained model's by Spearman rank correlation (of the maps, and of their absolute
values) and SSIM. A method whose maps depend on what the model learned changes them: it `passes` when,
with the top half of the layers randomised, the maps' similarity to the trained model's has fallen below
`THRESHOLD`. The similarity judged is the mean SSIM for image maps, and the rank correlation of the
absolute values for token and feature maps (a row of a few dozen values has no structure for SSIM to
see). A method whose maps keep their structure (guided backpropagation, which mostly shows the input's
edges, is Adebayo et al.'s example) fails; so does a tabular gradient dominated by the features' scales.

The served model is never touched: the stages run on a deep copy.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from explainers.base import Explainer
from explainers.evaluation.agreement import spearman, ssim
from explainers.models.handle import LocalModel, RawInput
from explainers.params import Params

THRESHOLD = 0.5


@dataclass(frozen=True)
class SanityOptions:
    stages: int = 8  # at most this many stages (layers are grouped when there are more)
    seed: int = 0


def weighted_layers(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Layers with weights in definition order (the output layer last)."""
    return [(n, m) for n, m in module.named_modules()
            if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Embedding)) and n]


def stage_groups(names: list[str], stages: int) -> list[list[str]]:
    """The layers randomised at each stage, top down: one per stage, grouped into `stages` when more."""
    top_down = names[::-1]
    if len(top_down) <= stages:
        return [[n] for n in top_down]
    bounds = np.linspace(0, len(top_down), stages + 1).round().astype(int)
    return [top_down[a:b] for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def randomise(layer: nn.Module, gen: torch.Generator) -> None:
    """New weights with the trained ones' standard deviation; biases (and a BatchNorm's shift) to zero."""
    with torch.no_grad():
        for name, p in layer.named_parameters(recurse=False):
            if name == "weight":
                std = float(p.float().std()) or 0.1
                p.copy_((torch.randn(p.shape, generator=gen) * std).to(p))
            else:
                p.zero_()


def _copy(model: LocalModel, suffix: str) -> LocalModel:
    module = copy.deepcopy(model.module)
    twin = LocalModel(model.manifest, model.folder, module, model.device)  # no state folder: nothing is stored
    twin.__dict__["weights_hash"] = f"{model.weights_hash}-{suffix}"  # patterns of these weights are others
    return twin


def sanity_check(model: LocalModel, method: Explainer[Any], params: Params, raws: Sequence[RawInput],
                 options: SanityOptions, progress: Callable[[float], None] | None = None) -> dict[str, Any]:
    """Maps of the trained model and of each randomisation stage, compared; the verdict."""
    names = [n for n, _ in weighted_layers(model.module)]
    groups = stage_groups(names, options.stages)
    targets = [method.explain(model, raw, params).target.index for raw in raws]  # the trained model's classes
    trained = [method.explain(model, raw, params, target=t).attribution for raw, t in zip(raws, targets)]
    twin = _copy(model, f"randomised-{options.seed}")
    layers = dict(twin.module.named_modules())
    gen = torch.Generator().manual_seed(options.seed)
    stages: list[dict[str, Any]] = []
    for k, group in enumerate(groups):
        for name in group:
            randomise(layers[name], gen)
        twin.__dict__["weights_hash"] = f"{model.weights_hash}-randomised-{options.seed}-{k}"
        maps = [method.explain(twin, raw, params, target=t).attribution for raw, t in zip(raws, targets)]
        rank = [spearman(a, b) for a, b in zip(trained, maps)]
        rank_abs = [spearman(np.abs(a), np.abs(b)) for a, b in zip(trained, maps)]
        similarity = [ssim(a, b) for a, b in zip(trained, maps)]
        stages.append({"randomised": group[-1], "layers_randomised": sum(len(g) for g in groups[:k + 1]),
                       "spearman": float(np.mean(rank)), "spearman_abs": float(np.mean(rank_abs)),
                       "ssim": float(np.mean(similarity))})
        if progress is not None:
            progress((k + 1) / len(groups))
    judged = stages[(len(stages) - 1) // 2]  # the top half of the layers randomised
    judged_by = "ssim" if all(np.ndim(a) == 2 and min(np.shape(a)) >= 7 for a in trained) else "spearman_abs"
    passes = judged[judged_by] < THRESHOLD
    return {"method": method.name, "model_id": model.id, "weights_hash": model.weights_hash,
            "n_inputs": len(raws), "stages": stages, "passes": passes, "threshold": THRESHOLD,
            "judged_at": judged["layers_randomised"], "judged_by": judged_by,
            "verdict": "passes" if passes else "fails",
            "why": ("the maps change when the model's top layers are randomised" if passes else
                    "the maps keep their structure with the top half of the layers randomised: they depend "
                    "little on what the model learned")}
