"""Charts of model-level explanations, drawn with PIL: rankings as bar charts (one per class, stacked),
generated images as a captioned grid, rules as rows of text with their coverage and precision bars."""

from __future__ import annotations

import io
import math
import textwrap

import numpy as np
from PIL import Image, ImageDraw

from explainers.global_result import GeneratedImage, Ranking, Rule
from explainers.render.fonts import INK, MUTED, fit, fmt, font, text_at
from explainers.render.tabular import bar_chart_png

PAD = 12
CELL = 160  # generated images are shown at least this big
CAPTION_H = 38
RULES_W = 900
COVERAGE = (70, 110, 170)
PRECISION = (60, 150, 90)
TRACK = (232, 234, 238)


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=6)
    return buf.getvalue()


def image_png(rgb: np.ndarray) -> bytes:
    """An RGB uint8 image [H, W, 3] as PNG, at its own size."""
    return _png(Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)))


def ranking_chart_png(rankings: list[Ranking], method: str, max_features: int = 12) -> bytes:
    """One bar chart per ranking (class), stacked: each feature's importance, signed by its direction."""
    parts = []
    for ranking in rankings:
        names = [f.name for f in ranking.features]
        scores = np.array([f.importance * (1.0 if f.direction >= 0 else -1.0) for f in ranking.features])
        title = f"{method} - {ranking.label} ({ranking.n_explanations} explanations)"
        png = bar_chart_png(names, scores, title=title, max_features=max_features,
                            xlabel="importance (+ for the class, - against it)")
        parts.append(Image.open(io.BytesIO(png)).convert("RGB"))
    width = max(p.width for p in parts)
    out = Image.new("RGB", (width, sum(p.height for p in parts)), (255, 255, 255))
    y = 0
    for part in parts:
        out.paste(part, (0, y))
        y += part.height
    return _png(out)


def images_grid_png(images: list[GeneratedImage], method: str, columns: int = 5) -> bytes:
    """The images in a grid, each enlarged (nearest neighbour, by a whole factor) to at least `CELL` px,
    with its label and the objective it reached under it."""
    side = max(max(g.image.shape[:2]) for g in images)
    factor = max(1, math.ceil(CELL / side))
    cell = side * factor
    cols = min(columns, len(images))
    rows = math.ceil(len(images) / cols)
    title_h = 30
    img = Image.new("RGB", (PAD + cols * (cell + PAD), title_h + PAD + rows * (cell + CAPTION_H + PAD)),
                    (255, 255, 255))
    draw = ImageDraw.Draw(img)
    face, small, bold = font(13), font(12), font(15)
    text_at(draw, (PAD, PAD + 8), fit(draw, method, bold, img.width - 2 * PAD), bold)
    for k, g in enumerate(images):
        r, c = divmod(k, cols)
        x0, y0 = PAD + c * (cell + PAD), title_h + PAD + r * (cell + CAPTION_H + PAD)
        tile = Image.fromarray(np.ascontiguousarray(g.image, dtype=np.uint8))
        tile = tile.resize((tile.width * factor, tile.height * factor), Image.Resampling.NEAREST)
        img.paste(tile, (x0, y0))
        text_at(draw, (x0, y0 + cell + 10), fit(draw, g.label, face, cell), face)
        note = f"objective {fmt(g.objective)}" if g.objective is not None else \
            ", ".join(f"{k} {fmt(v)}" for k, v in g.values.items())
        text_at(draw, (x0, y0 + cell + 27), fit(draw, note, small, cell), small, fill=MUTED)
    return _png(img)


def rules_chart_png(rules: list[Rule], method: str, fidelity: float | None = None) -> bytes:
    """Each rule as text (wrapped), with bars for its coverage and precision (0 to 1)."""
    face, small, bold = font(13), font(12), font(15)
    wrapped = [textwrap.wrap(r.text().split(" (coverage")[0], width=110) or ["TRUE"] for r in rules]
    bar_h, line_h = 12, 18
    heights = [len(w) * line_h + 2 * (bar_h + 6) + 14 for w in wrapped]
    title_h = 34
    img = Image.new("RGB", (RULES_W, title_h + PAD + sum(heights) + PAD), (255, 255, 255))
    draw = ImageDraw.Draw(img)
    title = f"{method}: {len(rules)} rules" + (f", fidelity {fidelity:.3f}" if fidelity is not None else "")
    text_at(draw, (PAD, PAD + 10), fit(draw, title, bold, RULES_W - 2 * PAD), bold)
    y = title_h + PAD
    track_x0, track_x1 = PAD + 90, RULES_W - PAD - 60
    for rule, lines, height in zip(rules, wrapped, heights):
        for k, line in enumerate(lines):
            text_at(draw, (PAD, y + k * line_h + line_h / 2), fit(draw, line, face, RULES_W - 2 * PAD), face,
                    fill=INK)
        yb = y + len(lines) * line_h + 4
        for label, value, colour in (("coverage", rule.coverage, COVERAGE), ("precision", rule.precision, PRECISION)):
            text_at(draw, (PAD, yb + bar_h / 2), label, small, fill=MUTED)
            draw.rectangle((track_x0, yb, track_x1, yb + bar_h), fill=TRACK)
            if value > 0:
                draw.rectangle((track_x0, yb, track_x0 + round((track_x1 - track_x0) * min(1.0, value)), yb + bar_h),
                               fill=colour)
            text_at(draw, (track_x1 + 6, yb + bar_h / 2), f"{value:.3f}", small)
            yb += bar_h + 6
        y += height
        draw.line((PAD, y - 5, RULES_W - PAD, y - 5), fill=TRACK, width=1)
    return _png(img)
