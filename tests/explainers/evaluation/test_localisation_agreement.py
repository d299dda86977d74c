"""Pointing game, positive and energy shares, and agreement figures on hand-made maps."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.evaluation.agreement import agreement, spearman, ssim, top_overlap
from explainers.evaluation.localisation import box_mask, localisation


def test_box_masks_exclude_their_right_and_bottom_edges():
    mask = box_mask((2, 1, 5, 3), (6, 8))
    assert mask.sum() == 3 * 2 and mask[1, 2] and mask[2, 4] and not mask[3, 2] and not mask[1, 5]


def test_pointing_game_with_and_without_tolerance():
    region = box_mask((10, 10, 20, 20), (40, 40))
    a = np.zeros((40, 40))
    a[15, 15] = 1.0
    assert localisation(a, region, tolerance=0)["pointing_hit"] is True
    a[15, 15], a[15, 24] = 0.0, 1.0  # 5 px right of the box
    assert localisation(a, region, tolerance=0)["pointing_hit"] is False
    assert localisation(a, region, tolerance=5)["pointing_hit"] is True
    assert localisation(a, region, tolerance=4)["pointing_hit"] is False


def test_positive_and_energy_shares_tell_an_offset_apart():
    region = box_mask((0, 0, 10, 10), (20, 20))  # a quarter of the image
    inside = np.where(region, 1.0, 0.0)
    figures = localisation(inside, region)
    assert figures["positive_share"] == figures["energy_share"] == 1.0 and figures["region_share"] == 0.25
    offset = inside + 5.0  # RISE-like constant offset: every pixel positive
    shifted = localisation(offset, region)
    assert shifted["positive_share"] == pytest.approx((100 * 6) / (100 * 6 + 300 * 5))
    assert shifted["energy_share"] == 1.0  # min-max normalisation removes the offset
    signed = np.where(region, 1.0, -1.0)
    assert localisation(signed, region)["positive_share"] == 1.0


def test_a_region_must_fit_and_not_be_empty():
    with pytest.raises(ValueError):
        localisation(np.zeros((4, 4)), np.zeros((4, 5), dtype=bool))
    with pytest.raises(ValueError):
        localisation(np.zeros((4, 4)), np.zeros((4, 4), dtype=bool))


def test_agreement_figures():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(12, 12))
    assert spearman(a, 2 * a + 1) == pytest.approx(1.0)
    assert spearman(a, -a) == pytest.approx(-1.0)
    assert spearman(a, np.zeros_like(a)) == 0.0
    assert top_overlap(a, a, 10) == 1.0 and top_overlap(a, -a, 10) == 0.0
    assert ssim(a, a) == pytest.approx(1.0) and ssim(a, rng.normal(size=a.shape)) < 0.5
    pairs = agreement({"x": a, "y": a, "z": -a})
    assert [p["methods"] for p in pairs] == [["x", "y"], ["x", "z"], ["y", "z"]]
    assert pairs[0]["spearman"] == pytest.approx(1.0) and pairs[1]["top_overlap"] == 0.0
