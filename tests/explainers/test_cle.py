"""CLE: it is LIME when its surrogate has no conjunctions, and with them it captures an interaction that
LIME's additive surrogate cannot (the paper's claim of higher local fidelity)."""

from __future__ import annotations

import numpy as np
import pytest

from explainers.methods.cle import Cle, conjunctions, spread
from explainers.methods.lime import Lime
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from tests.explainers.conftest import raw_for
from tests.explainers.games import make_games

AND_TEXT = "the plot was good and the movie was great ."


@pytest.fixture(scope="module")
def games(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return make_games(tmp_path_factory.mktemp("cle-games"))


def explain(cls: type, model: LocalModel, raw: RawInput, **params):
    return cls().explain(model, raw, parse_params(cls.Params, params))


def test_conjunction_columns_and_the_spread_of_their_weights() -> None:
    data = np.array([[1, 1, 0], [1, 0, 1], [1, 1, 1]], dtype=bool)
    extra, terms = conjunctions(data, [0, 1, 2], 3)
    assert terms == [(0, 1), (0, 2), (1, 2), (0, 1, 2)]
    np.testing.assert_array_equal(extra, [[1, 0, 0, 0], [0, 1, 0, 0], [1, 1, 1, 1]])
    coef = np.array([0.1, 0.2, 0.3, 0.6, 0.0, 0.0, 0.9])
    np.testing.assert_allclose(spread(coef, terms, 3, singles=True), [0.1 + 0.3 + 0.3, 0.2 + 0.3 + 0.3, 0.3 + 0.3])
    assert spread(coef, terms, 3, singles=True).sum() == pytest.approx(coef.sum())


@pytest.mark.parametrize("model_id", ["tiny-image", "tiny-text", "tiny-tabular"])
def test_without_conjunctions_cle_is_lime(tiny_registry: ModelRegistry, model_id: str) -> None:
    model = tiny_registry.get(model_id)
    raw = raw_for(model, seed=8)
    lime = explain(Lime, model, raw, n_samples=300, seed=4)
    cle = explain(Cle, model, raw, n_samples=300, seed=4, max_span=1)
    np.testing.assert_allclose(cle.attribution, lime.attribution, rtol=1e-10, atol=1e-12)
    assert cle.details["score"] == pytest.approx(lime.details["score"], abs=1e-12)
    assert cle.details["intercept"] == pytest.approx(lime.details["intercept"], abs=1e-12)
    assert cle.details["interactions"] == []
    if model_id != "tiny-image":  # one term per token or feature (an image's map is per pixel)
        assert cle.details["n_terms"] == lime.attribution.size


def test_cle_captures_the_interaction_lime_cannot(games: ModelRegistry) -> None:
    """The model answers "good" AND "movie": CLE's strongest term is that conjunction, with the size of the
    effect (0.8), and its surrogate fits (weighted R^2 near 1) where LIME's additive one cannot."""
    model = games.get("word-and")
    raw = RawInput(text=AND_TEXT)
    cle = explain(Cle, model, raw, n_samples=800, seed=0, ridge_alpha=0.01)
    lime = explain(Lime, model, raw, n_samples=800, seed=0, ridge_alpha=0.01)
    top = cle.details["interactions"][0]
    assert sorted(top["features"]) == ["good", "movie"], cle.details["interactions"][:3]
    assert top["weight"] == pytest.approx(0.8, abs=0.05)
    assert cle.details["score"] > 0.99 > 0.9 > lime.details["score"]
    tokens = cle.tokens or []
    best = {tokens[i] for i in np.argsort(-cle.attribution)[:2]}
    assert best == {"good", "movie"}
    # the map carries the whole surrogate at the input: its sum is the local prediction minus the intercept
    assert cle.attribution.sum() == pytest.approx(cle.details["local_prediction"] - cle.details["intercept"],
                                                  abs=1e-5)
