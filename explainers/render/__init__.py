"""Renderers: turn an attribution into what a person sees (PNG overlays, HTML, bar charts)."""

from explainers.render.colormaps import (
    COLORMAPS,
    DIVERGING,
    SEQUENTIAL,
    apply,
    default_colormap,
    lut,
)
from explainers.render.image import encode_png, heatmap_png, normalize_map, overlay, overlay_png
from explainers.render.tabular import bar_chart_png
from explainers.render.text import tokens_html

__all__ = [
    "COLORMAPS",
    "DIVERGING",
    "SEQUENTIAL",
    "apply",
    "bar_chart_png",
    "default_colormap",
    "encode_png",
    "heatmap_png",
    "lut",
    "normalize_map",
    "overlay",
    "overlay_png",
    "tokens_html",
]
