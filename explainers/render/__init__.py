"""Renderers: turn an attribution into what a person sees (figures with legends, HTML, bar charts)."""

from explainers.render.colormaps import (
    COLORMAPS,
    DIVERGING,
    SEQUENTIAL,
    apply,
    default_colormap,
    lut,
)
from explainers.render.figure import FigureOptions, caption_text, image_figure, image_figure_png
from explainers.render.image import encode_png, heatmap_png, normalize_map, overlay, overlay_png
from explainers.render.styles import STYLES
from explainers.render.tabular import bar_chart_png
from explainers.render.text import text_page, tokens_html

__all__ = [
    "COLORMAPS",
    "DIVERGING",
    "SEQUENTIAL",
    "STYLES",
    "FigureOptions",
    "apply",
    "bar_chart_png",
    "caption_text",
    "default_colormap",
    "encode_png",
    "heatmap_png",
    "image_figure",
    "image_figure_png",
    "lut",
    "normalize_map",
    "overlay",
    "overlay_png",
    "text_page",
    "tokens_html",
]
