"""Activation maximisation: images optimised to maximise a class score or a channel of a layer."""

from __future__ import annotations

import torch
from pydantic import Field

from explainers.errors import InvalidParams, InvalidTarget
from explainers.global_base import GlobalContext, GlobalExplainer
from explainers.global_result import GeneratedImage, ModelResult
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
from explainers.models.protocol import Model
from explainers.params import SeededParams
from explainers.registry import register
from explainers.types import Modality, Takes

MAX_CLASSES = 16  # without a target, one image per class for models with at most this many classes


class ActivationMaximisationParams(SeededParams):
    layer: str | None = Field(None, min_length=1, max_length=200, description="maximise a channel of this layer "
                              "(module name); null: the target class's score (`score`: logit or probability)")
    channel: int = Field(0, ge=0, le=100000, description="with `layer`: the channel maximised (its mean over "
                         "positions)")
    n_images: int = Field(1, ge=1, le=16, description="images per objective, from different random starts")
    n_steps: int = Field(128, ge=1, le=5000, description="optimisation steps (Adam)")
    learning_rate: float = Field(0.2, ge=1e-4, le=1.0, description="Adam's step size")
    parametrisation: Parametrisation = Field("fourier", description="fourier: a spectrum scaled by 1/frequency, "
                                             "colours decorrelated (Olah et al. 2017); pixel: free pixel values")
    jitter: int = Field(2, ge=0, le=64, description="random shift of each step's image, up to this many px")
    scale: float = Field(0.05, ge=0.0, le=0.5, description="random scaling of each step's image, by a factor in "
                         "[1 - scale, 1 + scale]")
    rotation: float = Field(5.0, ge=0.0, le=45.0, description="random rotation of each step's image, degrees")
    frequency_penalty: float = Field(0.0, ge=0.0, le=1000.0, description="weight of a total-variation penalty "
                                     "(high frequencies) on the image in [0, 1]")


@register
class ActivationMaximisation(GlobalExplainer[ActivationMaximisationParams]):
    """Activation maximisation (Erhan et al. 2009), with the regularisers of Olah et al. 2017 (https://distill.pub/2017/feature-visualization/).

    Images start from small noise and follow the gradient of the objective: the target class's score
    (with no target: one image set per class) or the mean of a layer's channel. Each step sees the
    image randomly shifted, scaled and rotated, so that what is found is robust to them; the image is
    parametrised in a 1/f-scaled Fourier basis with decorrelated colours (the bundle's sample images'
    colour covariance), or as pixels. `objective` is what the final image reaches, untransformed.
    """

    name = "activation_maximisation"
    modalities = frozenset({Modality.IMAGE})
    takes = Takes.NOTHING
    Params = ActivationMaximisationParams

    @classmethod
    def check(cls, model: Model, params: ActivationMaximisationParams, target: int | str | None) -> None:
        super().check(model, params, target)
        assert isinstance(model, LocalModel)
        if params.layer is not None:
            channels = layer_channels(model, params.layer)
            if params.channel >= channels:
                raise InvalidParams(f"layer {params.layer!r} has {channels} channels: no channel {params.channel}",
                                    details={"channels": channels})
        elif target is None and len(model.labels) > MAX_CLASSES:
            raise InvalidTarget(f"the model has {len(model.labels)} classes: name a target class "
                                f"(one image set per class only up to {MAX_CLASSES})")

    def _explain(self, ctx: GlobalContext, p: ActivationMaximisationParams) -> ModelResult:
        model = ctx.local
        spec = model.manifest.image
        assert spec is not None
        target = ctx.target()
        if p.layer is not None:
            goals = [(f"{p.layer}[{p.channel}]", -1)]
        else:
            classes = [target] if target is not None else list(range(len(model.labels)))
            goals = [(model.labels[k], k) for k in classes]
        which = torch.tensor([k for _, k in goals for _ in range(p.n_images)], device=ctx.device)
        gen = torch.Generator().manual_seed(p.seed)
        image = ImageParams(p.parametrisation, len(which), spec.channels, spec.size, gen, ctx.device,
                            colour_matrix(model) if p.parametrisation == "fourier" else None)
        optimiser = torch.optim.Adam(image.parameters(), lr=p.learning_rate)
        for step in range(p.n_steps):
            with torch.enable_grad():
                pixels = image()
                seen = random_transform(pixels, gen, jitter=p.jitter, scale=p.scale, rotation=p.rotation)
                objective = self._objective(model, model.normalize(seen), which, p)
                loss = -objective.sum() + p.frequency_penalty * total_variation(pixels).sum()
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
            optimiser.step()
            ctx.evaluations += len(which)
            ctx.progress((step + 1) / p.n_steps)
        with torch.no_grad():
            pixels = image()
            reached = self._objective(model, model.normalize(pixels), which, p)
            probs = model.probabilities(model.module(model.normalize(pixels)).float())
        images = []
        for i, (rgb, k) in enumerate(zip(to_rgb(model, pixels), which.tolist())):
            label = goals[i // p.n_images][0]
            values = {"probability": float(probs[i, k])} if k >= 0 else {}
            values["top_class_probability"] = float(probs[i].max())
            images.append(GeneratedImage(rgb, label, float(reached[i]), values))
        details = {"objective": "channel mean" if p.layer else p.score, "n_steps": p.n_steps,
                   "parametrisation": p.parametrisation, "layer": p.layer, "channel": p.channel if p.layer else None}
        return ModelResult(images=images, details=details)

    @staticmethod
    def _objective(model: LocalModel, x: torch.Tensor, which: torch.Tensor,
                   p: ActivationMaximisationParams) -> torch.Tensor:
        """Per image [n]: its class's score, or the layer channel's mean activation."""
        if p.layer is not None:
            _, out = layer_output(model, p.layer, x)
            act = out[:, p.channel]
            return act.flatten(1).mean(1) if act.dim() > 1 else act
        outputs = model.module(x)
        as_probabilities = p.score == "probabilities" and model.manifest.output != "probabilities"
        scores = model.probabilities(outputs) if as_probabilities else outputs
        return scores.gather(1, which[:, None])[:, 0]
