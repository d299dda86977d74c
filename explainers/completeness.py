"""One place for a completeness (conservation) gap: what an attribution should sum to, minus its sum."""

from __future__ import annotations


def completeness(attribution_sum: float, score: float, reference_score: float = 0.0) -> dict[str, float]:
    """`completeness_gap` = (score - reference_score) - attribution_sum, with its parts.

    Integrated gradients and DeepLIFT explain score(x) - score(baseline); LRP distributes score(x) itself
    (reference 0). A complete (conserving) method has a gap of 0 up to rounding.
    """
    difference = score - reference_score
    return {"completeness_gap": difference - attribution_sum, "attribution_sum": attribution_sum,
            "score_difference": difference}
