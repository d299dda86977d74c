"""Extremal perturbation: the smooth mask of a given area that keeps (or deletes) the most evidence."""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from pydantic import Field

from explainers.base import Attribution, Context, Explainer
from explainers.masking import FILL_HELP, PixelFill, compose_pixels, pixel_fill
from explainers.methods._smooth_masks import SmoothMask, area_loss, area_template
from explainers.params import Params
from explainers.registry import register
from explainers.types import Execution, Modality

Area = Annotated[float, Field(gt=0.0, lt=1.0)]


class ExtremalPerturbationParams(Params):
    areas: list[Area] = Field([0.05, 0.1, 0.2], min_length=1, max_length=8, description="target areas, each a "
                              "fraction of the image in (0, 1); one mask is optimised per area, all in one batch")
    game: Literal["preservation", "deletion"] = Field(
        "preservation", description="preservation: the mask keeps what most supports the class (the rest "
        "perturbed); deletion: perturbing the mask's region lowers the class the most")
    n_steps: int = Field(300, ge=10, le=2000, description="optimisation steps (Adam)")
    learning_rate: float = Field(0.05, ge=1e-4, le=1.0, description="Adam's step size on the mask parameters")
    step: int = Field(2, ge=1, le=64, description="px of the model input between mask parameters")
    sigma: float = Field(1.5, ge=0.5, le=16.0, description="smoothness of the mask: its blobs' radius, in "
                         "parameter cells (a cell is `step` px)")
    area_weight: float = Field(1e4, ge=1.0, le=1e5, description="final weight of the area constraint; it "
                               "grows geometrically from 1 over the steps")
    perturbation: PixelFill = Field("blur", description="what the perturbed region shows: " + FILL_HELP)


@register
class ExtremalPerturbation(Explainer[ExtremalPerturbationParams]):
    """Extremal perturbations (Fong, Patrick & Vedaldi 2019). https://arxiv.org/abs/1910.08485

    For each area a, a smooth mask m (`explainers.methods._smooth_masks`) maximises the class score of
    m * x + (1 - m) * perturbed(x) (preservation) or minimises that of (1 - m) * x + m * perturbed(x)
    (deletion), under the ranking-based area loss. The map is the mean of the masks; `details.areas`
    has, per area, the area reached (the share of the image where the mask exceeds 1/2; `mask_mean`, its
    mean, also counts the soft rim a smooth mask needs) and the target score with the mask applied.
    """

    contrastive = True
    name = "extremal_perturbation"
    modalities = frozenset({Modality.IMAGE})
    execution = Execution.ASYNC
    Params = ExtremalPerturbationParams
    signed = False

    def _attribute(self, ctx: Context, p: ExtremalPerturbationParams) -> Attribution:
        x = ctx.x.detach()
        size = (x.shape[-2], x.shape[-1])
        fill = pixel_fill(ctx, p.perturbation).detach()
        masker = SmoothMask(size, p.step, p.sigma, x.device)
        n = len(p.areas)
        params = torch.full((n, 1, *masker.grid), 0.5, device=x.device, requires_grad=True)
        templates = torch.stack([area_template(a, size[0] * size[1], x.device) for a in p.areas])
        optimiser = torch.optim.Adam([params], lr=p.learning_rate)
        sign = -1.0 if p.game == "preservation" else 1.0
        with torch.no_grad():
            full = float(ctx.score(ctx.forward(x))[0])
        for t in range(p.n_steps):
            weight = p.area_weight ** (t / max(1, p.n_steps - 1))
            with torch.enable_grad():
                masks = masker(params)
                scores = ctx.score(ctx.forward(self._apply(x, fill, masks, p.game)))
                loss = (sign * scores + weight * area_loss(masks, templates)).sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
            optimiser.step()
            with torch.no_grad():
                params.clamp_(0, 1)
            ctx.evaluations += n  # forward and backward passes
            ctx.progress((t + 1) / p.n_steps)
        with torch.no_grad():
            masks = masker(params)
            scores = ctx.score(ctx.forward(self._apply(x, fill, masks, p.game)))
        areas = [{"area": a, "area_reached": float((masks[i] > 0.5).float().mean()),
                  "mask_mean": float(masks[i].mean()), "score": float(scores[i])} for i, a in enumerate(p.areas)]
        details = {"game": p.game, "areas": areas, "score_input": full, "n_steps": p.n_steps,
                   "perturbation": p.perturbation, "mask_grid": list(masker.grid)}
        return Attribution(masks.mean(0)[0], details)

    @staticmethod
    def _apply(x: torch.Tensor, fill: torch.Tensor, masks: torch.Tensor, game: str) -> torch.Tensor:
        keep = masks if game == "preservation" else 1 - masks
        return compose_pixels(x, fill, keep)
