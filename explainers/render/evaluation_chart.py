"""The evaluation table as a chart: one panel per figure, one bar per method with its error bar.

Each panel says which way is better; a grey tick marks the random map's figure where there is one: a
map is worth something only where it beats the tick.
"""

from __future__ import annotations

import io
from typing import Any

from PIL import Image, ImageDraw

from explainers.render.fonts import INK, MUTED, fit, fmt, font, text_at

PANELS: tuple[tuple[str, str, str, str | None], ...] = (  # figure, title, better, the random map's figure
    ("deletion_auc", "Deletion AUC", "lower is better", "random_deletion_auc"),
    ("insertion_auc", "Insertion AUC", "higher is better", "random_insertion_auc"),
    ("morf_aopc", "MoRF AOPC", "higher is better", "random_morf_aopc"),
    ("lerf_aopc", "LeRF AOPC", "lower is better", None),
    ("pointing_game", "Pointing game", "hit rate, higher is better", None),
    ("energy_share", "Energy in the object", "higher is better", None),
)
PANEL_W, PAD, ROW_H, BAR_H, TITLE_H, LABEL_W = 250, 14, 24, 14, 44, 150
COLOURS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127)]


def evaluation_chart_png(rows: list[dict[str, Any]], title: str) -> bytes:
    """rows: the evaluation table's rows ({"method", figure: {"mean", "sem"}, ...}) -> PNG bytes."""
    panels = [p for p in PANELS if any(isinstance(r.get(p[0]), dict) for r in rows)]
    columns = min(3, max(1, len(panels)))
    grid_rows = max(1, -(-len(panels) // columns))
    panel_h = TITLE_H + ROW_H * len(rows) + PAD
    width = LABEL_W + PAD + columns * (PANEL_W + PAD)
    height = 40 + grid_rows * (panel_h + PAD)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    big, small = font(16), font(12)
    text_at(draw, (PAD, 20), fit(draw, title, big, width - 2 * PAD), big)
    for k, (key, name, better, reference) in enumerate(panels):
        gx, gy = LABEL_W + PAD + (k % columns) * (PANEL_W + PAD), 40 + (k // columns) * (panel_h + PAD)
        text_at(draw, (gx, gy + 10), name, font(13))
        text_at(draw, (gx, gy + 26), better, small, fill=MUTED)
        values = [r[key]["mean"] + (r[key].get("sem") or 0.0) for r in rows if isinstance(r.get(key), dict)]
        refs = [r[reference]["mean"] for r in rows if reference and isinstance(r.get(reference), dict)]
        top = max([1e-12, *values, *refs])
        scale = (PANEL_W - 50) / top
        draw.line([(gx, gy + TITLE_H), (gx, gy + TITLE_H + ROW_H * len(rows))], fill=(90, 90, 90))
        for i, row in enumerate(rows):
            y = gy + TITLE_H + i * ROW_H + ROW_H / 2
            if k % columns == 0:
                text_at(draw, (gx - 8, y), fit(draw, row["method"], small, LABEL_W - 8), small, anchor="right")
            cell = row.get(key)
            if not isinstance(cell, dict):
                text_at(draw, (gx + 6, y), "n/a", small, fill=MUTED)
                continue
            mean, sem = float(cell["mean"]), float(cell.get("sem") or 0.0)
            x1 = gx + max(0.0, mean) * scale
            draw.rectangle([gx, y - BAR_H / 2, max(gx + 1, x1), y + BAR_H / 2], fill=COLOURS[i % len(COLOURS)])
            if sem > 0:
                a, b = gx + max(0.0, mean - sem) * scale, gx + (mean + sem) * scale
                draw.line([(a, y), (b, y)], fill=INK, width=1)
                draw.line([(a, y - 4), (a, y + 4)], fill=INK)
                draw.line([(b, y - 4), (b, y + 4)], fill=INK)
            if reference and isinstance(row.get(reference), dict):
                rx = gx + float(row[reference]["mean"]) * scale
                draw.line([(rx, y - BAR_H / 2 - 2), (rx, y + BAR_H / 2 + 2)], fill=(120, 120, 120), width=2)
            text_at(draw, (min(gx + PANEL_W - 4, max(x1, gx + (mean + sem) * scale) + 5), y), fmt(mean), small)
    buf = io.BytesIO()
    canvas.save(buf, format="PNG", optimize=False)
    return buf.getvalue()
