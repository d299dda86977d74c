"""Rule extraction on the breast-cancer demo: faithful, short rules whose numbers add up."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.models.registry import ModelRegistry
from explainers.service import ExplanationService


@pytest.fixture(scope="module")
def rules(demo_registry: ModelRegistry) -> dict:
    return ExplanationService(demo_registry).explain_model("rule_extraction", "breast-cancer-mlp",
                                                           {"params": {"max_depth": 4, "seed": 0}})


def test_fidelity_on_held_out_samples_with_short_rules(rules: dict) -> None:
    assert rules["details"]["fidelity"] >= 0.9, rules["details"]
    assert all(1 <= len(r["conditions"]) <= 4 for r in rules["rules"])
    assert rules["details"]["max_conditions"] <= 4 and rules["details"]["n_samples"] == 400  # the background


def test_coverage_and_precision_add_up_to_the_fidelity(rules: dict) -> None:
    """The leaves partition the held-out samples, and the tree predicts each leaf's class: the coverages sum
    to 1 and coverage-weighted precisions to the fidelity."""
    coverage = np.array([r["coverage"] for r in rules["rules"]])
    precision = np.array([r["precision"] for r in rules["rules"]])
    assert coverage.sum() == pytest.approx(1.0)
    assert float(coverage @ precision) == pytest.approx(rules["details"]["fidelity"])
    assert sum(r["support"] for r in rules["rules"]) == rules["details"]["n_holdout"]
    assert list(coverage) == sorted(coverage, reverse=True)


def test_rules_read_as_text_and_as_a_chart(rules: dict) -> None:
    first = rules["rules"][0]
    assert first["text"].startswith("IF ") and f"THEN {first['prediction']}" in first["text"]
    assert rules["text"].splitlines()[0] == first["text"]
    assert first["prediction"] in ("malignant", "benign")
    import base64
    import io

    from PIL import Image

    chart = Image.open(io.BytesIO(base64.b64decode(rules["chart_png"])))
    assert chart.format == "PNG" and chart.width == 900 and chart.height > 60 * len(rules["rules"])
