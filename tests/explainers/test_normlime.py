"""NormLIME: the features a model reads rank on top; the normalisation and the aggregation by themselves."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.methods.normlime import _Local, aggregate, normalised_top
from explainers.service import ExplanationService
from tests.explainers.games import SPARSE_WEIGHTS, make_games


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> ExplanationService:
    return ExplanationService(make_games(tmp_path_factory.mktemp("normlime-games")))


def test_each_explanation_is_normalised_to_unit_mass() -> None:
    kept, shares = normalised_top(np.array([0.1, -0.4, 0.0, 0.3, 0.05]), 3)
    assert kept.tolist() == [1, 3, 0]
    np.testing.assert_allclose(shares, [-0.5, 0.375, 0.125])
    assert np.abs(shares).sum() == pytest.approx(1.0)
    assert normalised_top(np.zeros(3), 2)[1].tolist() == [0.0, 0.0]


def test_aggregation_averages_over_the_explanations_that_keep_a_feature() -> None:
    locals_ = [_Local(0, ["a", "b", "a"], np.array([0.25, -0.5, 0.25])),  # "a" twice in one input: one weight
               _Local(0, ["a", "c"], np.array([-0.2, 0.8])),
               _Local(1, ["c"], np.array([1.0]))]
    ranking = aggregate(locals_, "all", min_count=1)
    by_name = {f.name: f for f in ranking.features}
    assert by_name["a"].importance == pytest.approx((0.5 + 0.2) / 2) and by_name["a"].count == 2
    assert by_name["a"].direction == pytest.approx((0.5 - 0.2) / 2)
    assert by_name["c"].importance == pytest.approx(0.9) and by_name["b"].direction == pytest.approx(-0.5)
    assert [f.name for f in ranking.features] == ["c", "b", "a"] and ranking.n_explanations == 3
    assert [f.name for f in aggregate(locals_, "all", min_count=2).features] == ["c", "a"]


def test_the_features_the_model_reads_rank_on_top(service: ExplanationService) -> None:
    out = service.explain_model("normlime", "sparse-tabular", {"params": {"max_samples": 24, "n_samples": 300,
                                                                           "top_features": 4}})
    used = {f"f{i}" for i in np.flatnonzero(SPARSE_WEIGHTS)}
    rankings = {r["label"]: r for r in out["rankings"]}
    assert set(rankings) >= {"all"} and rankings["all"]["n_explanations"] == 24
    for ranking in out["rankings"]:
        names = [f["name"] for f in ranking["features"]]
        assert set(names[:3]) == used, ranking
        weights = [f["importance"] for f in ranking["features"]]
        assert weights == sorted(weights, reverse=True)
    top = rankings["all"]["features"]
    assert top[0]["name"] == "f0"  # the largest weight (3) ranks first
    assert out["text"].startswith("all: f0") and out["chart_png"]
