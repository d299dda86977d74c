"""ModelExplanation -> the contract's `GlobalExplanation` body (charts and images as base64 PNG)."""

from __future__ import annotations

import base64
from typing import Any

from explainers.global_result import ModelExplanation
from explainers.render.global_charts import image_png, images_grid_png, ranking_chart_png, rules_chart_png


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def model_payload(expl: ModelExplanation) -> dict[str, Any]:
    r = expl.result
    chart: bytes | None = None
    lines: list[str] = []
    rankings = images = rules = None
    if r.rankings is not None:
        rankings = [{"label": k.label, "n_explanations": k.n_explanations,
                     "features": [f.to_dict() for f in k.features]} for k in r.rankings]
        chart = ranking_chart_png(r.rankings, expl.method)
        lines += [f"{k.label}: " + ", ".join(f"{f.name} ({f.importance:.3g})" for f in k.features[:10])
                  for k in r.rankings]
    if r.images is not None:
        images = [{"label": g.label, "objective": g.objective, "values": dict(g.values),
                   "png": _b64(image_png(g.image))} for g in r.images]
        if r.rankings is None:
            chart = images_grid_png(r.images, expl.method)
    if r.rules is not None:
        rules = [rule.to_dict() for rule in r.rules]
        chart = rules_chart_png(r.rules, expl.method, r.details.get("fidelity"))
        lines += [rule.text() for rule in r.rules]
    return {"method": expl.method, "model_id": expl.model_id, "scope": "global", "modality": expl.modality.value,
            "rankings": rankings, "images": images, "rules": rules, "text": "\n".join(lines) or None,
            "chart_png": _b64(chart) if chart else None, "details": dict(r.details), "timing_ms": dict(expl.timing_ms)}
