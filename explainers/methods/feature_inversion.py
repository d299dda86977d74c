"""Feature inversion: an image whose representation at a layer matches that of a given input."""

from __future__ import annotations

import torch
from pydantic import Field

from explainers.global_base import GlobalContext, GlobalExplainer
from explainers.global_result import GeneratedImage, ModelResult
from explainers.methods._concepts import concept_layer
from explainers.methods._image_optim import (
    ImageParams,
    Parametrisation,
    colour_matrix,
    layer_channels,
    layer_output,
    random_transform,
    to_rgb,
    total_variation,
)
from explainers.models.handle import LocalModel
from explainers.models.preprocess import image_pixels
from explainers.models.protocol import Model
from explainers.params import SeededParams
from explainers.registry import register
from explainers.types import Modality, Takes


class FeatureInversionParams(SeededParams):
    layer: str | None = Field(None, min_length=1, max_length=200, description="the layer (module name) whose "
                              "representation is matched; default: the bundle's cam_layer")
    n_steps: int = Field(200, ge=1, le=5000, description="optimisation steps (Adam)")
    learning_rate: float = Field(0.1, ge=1e-4, le=1.0, description="Adam's step size")
    tv_weight: float = Field(2.0, ge=0.0, le=1000.0, description="weight of the total-variation regulariser "
                             "TV^beta on the image in [0, 1] (relative to the normalised representation loss)")
    tv_beta: float = Field(2.0, ge=1.0, le=3.0, description="the exponent beta of TV^beta")
    parametrisation: Parametrisation = Field("pixel", description="pixel: free pixel values through a sigmoid (the "
                                             "paper's, bounded like its range constraint); fourier: 1/f-scaled "
                                             "spectrum with decorrelated colours")
    jitter: int = Field(0, ge=0, le=64, description="random shift of each step's image, up to this many px")


@register
class FeatureInversion(GlobalExplainer[FeatureInversionParams]):
    """Feature inversion (Mahendran & Vedaldi 2015). https://arxiv.org/abs/1412.0035

    From small noise, an image x minimises ||phi(x) - phi(x0)||^2 / ||phi(x0)||^2 + tv_weight * TV^beta(x),
    phi the layer's output and x0 the input: what the layer keeps of the input is what any such image
    shares with it. `details.relative_error` is ||phi(x) - phi(x0)|| / ||phi(x0)|| at the end
    (`initial_relative_error` at the start); `images` holds the reconstruction and the input as the model saw it.
    """

    name = "feature_inversion"
    modalities = frozenset({Modality.IMAGE})
    takes = Takes.INPUT
    Params = FeatureInversionParams

    @classmethod
    def check(cls, model: Model, params: FeatureInversionParams, target: int | str | None) -> None:
        super().check(model, params, target)
        assert isinstance(model, LocalModel)
        layer_channels(model, concept_layer(model, params.layer))

    def _explain(self, ctx: GlobalContext, p: FeatureInversionParams) -> ModelResult:
        model = ctx.local
        spec = model.manifest.image
        assert spec is not None
        layer = concept_layer(model, p.layer)
        x0 = model.prepare(ctx.input()).x
        with torch.no_grad():
            _, goal = layer_output(model, layer, x0)
            goal = goal.detach()
        norm = goal.pow(2).sum().clamp(min=1e-12)
        gen = torch.Generator().manual_seed(p.seed)
        image = ImageParams(p.parametrisation, 1, spec.channels, spec.size, gen, ctx.device,
                            colour_matrix(model) if p.parametrisation == "fourier" else None)
        optimiser = torch.optim.Adam(image.parameters(), lr=p.learning_rate)
        initial = self._error(model, layer, image(), goal, norm)
        for step in range(p.n_steps):
            with torch.enable_grad():
                pixels = image()
                seen = random_transform(pixels, gen, jitter=p.jitter, scale=0.0, rotation=0.0)
                _, rep = layer_output(model, layer, model.normalize(seen))
                loss = (rep - goal).pow(2).sum() / norm + p.tv_weight * total_variation(pixels, p.tv_beta).sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
            optimiser.step()
            ctx.evaluations += 1
            ctx.progress((step + 1) / p.n_steps)
        with torch.no_grad():
            pixels = image()
            error = self._error(model, layer, pixels, goal, norm)
        raw = ctx.input()
        assert raw.image is not None
        rgb, shown = to_rgb(model, pixels)[0], to_rgb(model, image_pixels(raw.image, spec))[0]
        images = [GeneratedImage(rgb, f"inversion of {layer}", error, {"relative_error": error}),
                  GeneratedImage(shown, "input (as the model sees it)", None, {})]
        details = {"layer": layer, "relative_error": error, "initial_relative_error": initial, "n_steps": p.n_steps,
                   "tv_weight": p.tv_weight, "tv_beta": p.tv_beta, "parametrisation": p.parametrisation}
        return ModelResult(images=images, details=details)

    @staticmethod
    def _error(model: LocalModel, layer: str, pixels: torch.Tensor, goal: torch.Tensor, norm: torch.Tensor) -> float:
        with torch.no_grad():
            _, rep = layer_output(model, layer, model.normalize(pixels))
        return float(((rep - goal).pow(2).sum() / norm).sqrt())
