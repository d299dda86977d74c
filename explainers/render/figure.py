"""An image explanation as a person sees it: a styled picture at a legible size with its legend."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from explainers.render.image import encode_png
from explainers.render.legend import Layout, figure
from explainers.render.styles import Style, picture, resize, target_size


@dataclass(frozen=True)
class FigureOptions:
    """`size`: the picture's long side in px (None: the input's, enlarged to >= 256 px)."""

    style: Style = "overlay"
    colormap: str | None = None
    alpha: float = 0.5
    mask_percent: float = 20.0
    size: int | None = None
    caption: bool = True
    colorbar: bool = True


def caption_text(method: str, label: str, score: float) -> str:
    """"gradcam · triangle (p = 0.970)": the method, the explained class and its probability."""
    return f"{method} \u00b7 {label} (p = {score:.3f})"


def image_figure(image: np.ndarray, attr: np.ndarray, *, signed: bool, options: FigureOptions,
                 caption: str, label: str) -> tuple[np.ndarray, Layout]:
    """The figure as an RGB array and where its parts are."""
    shape = target_size(image.shape[0], image.shape[1], options.size)
    photo, values = resize(image, attr, shape)
    pic, scale = picture(photo, values, options.style, signed=signed, colormap=options.colormap,
                         alpha=options.alpha, mask_percent=options.mask_percent)
    return figure(pic, scale, caption=caption if options.caption else None, label=label,
                  colorbar=options.colorbar)


def image_figure_png(image: np.ndarray, attr: np.ndarray, *, signed: bool, options: FigureOptions,
                     caption: str, label: str) -> bytes:
    return encode_png(image_figure(image, attr, signed=signed, options=options, caption=caption, label=label)[0])
