"""Shapley value sampling: exact on games whose Shapley values are known, 1/sqrt(n) convergence,
efficiency along every ordering, agreement with Captum's ShapleyValueSampling."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from explainers.base import Context
from explainers.masking import TabularFeatures, feature_masker
from explainers.methods.shapley_sampling import ShapleySampling, draw_permutations, path_masks, sample_marginals
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params
from tests.explainers.conftest import raw_for
from tests.explainers.games import GAME_X, exact_game_shapley, make_games


@pytest.fixture(scope="module")
def games(tmp_path_factory: pytest.TempPathFactory) -> ModelRegistry:
    return make_games(tmp_path_factory.mktemp("games"))


def shapley(model: LocalModel, raw: RawInput, **params):
    p = parse_params(ShapleySampling.Params, params)
    return ShapleySampling().explain(model, raw, p, target=1 if model.modality.value == "tabular" else None)


def exact(games: ModelRegistry, model_id: str) -> np.ndarray:
    model = games.get(model_id)
    assert model.background is not None
    return exact_game_shapley(model_id, model.background, GAME_X)


def test_permutation_paths_add_one_feature_per_step() -> None:
    perms = draw_permutations(np.random.default_rng(0), 6, 5, antithetic=True)
    np.testing.assert_array_equal(perms[1], perms[0][::-1])  # antithetic pairs: an ordering and its reverse
    assert all(sorted(p) == list(range(5)) for p in perms.tolist())
    masks = path_masks(perms)
    assert masks.shape == (6, 6, 5)
    assert not masks[:, 0].any() and masks[:, -1].all()
    added = np.argmax(masks[:, 1:] & ~masks[:, :-1], axis=2)  # the feature each step adds
    np.testing.assert_array_equal(added, perms)


def test_linear_game_is_exact_with_any_ordering(games: ModelRegistry) -> None:
    model = games.get("game-linear")
    ours = shapley(model, RawInput(features=GAME_X), max_exact_features=0, n_permutations=2, n_background=40)
    assert not ours.details["exact"]
    reference = exact(games, "game-linear")
    w = model.module.linear.weight.detach().double().numpy()[0]
    assert model.background is not None
    np.testing.assert_allclose(reference, w * (GAME_X - model.background.mean(0)), atol=1e-9)  # the known values
    np.testing.assert_allclose(ours.attribution, reference, atol=2e-6)


def test_one_pairwise_interaction_converges_and_antithetic_pairs_are_exact(games: ModelRegistry) -> None:
    model, raw = games.get("game-pair"), RawInput(features=GAME_X)
    reference = exact(games, "game-pair")
    assert abs(reference[0] - exact(games, "game-linear")[0]) > 1e-3  # the interaction moves the values
    # an ordering and its reverse see each pair in both orders: exact for games of order 2
    pair = shapley(model, raw, max_exact_features=0, n_permutations=2, n_background=40)
    np.testing.assert_allclose(pair.attribution, reference, atol=2e-6)
    errors = []
    for n in (4, 64, 1024):
        runs = [shapley(model, raw, max_exact_features=0, n_permutations=n, antithetic=False, n_background=40, seed=s)
                for s in range(4)]
        errors.append(np.sqrt(np.mean([(r.attribution - reference) ** 2 for r in runs])))
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.05 * np.abs(reference).max(), errors


@pytest.mark.parametrize("antithetic", [False, True])
def test_error_falls_as_one_over_sqrt_n(games: ModelRegistry, antithetic: bool) -> None:
    """On a game with a three-way interaction: RMSE over seeds against exact values, at n = 16 ... 1024,
    has a log-log slope near -1/2, and the reported standard errors match the observed error."""
    model, raw = games.get("game-triple"), RawInput(features=GAME_X)
    reference = exact(games, "game-triple")
    ns = np.array([16, 64, 256, 1024])
    rmse, reported = [], []
    for n in ns:
        runs = [shapley(model, raw, max_exact_features=0, n_permutations=int(n), antithetic=antithetic,
                        n_background=40, seed=s) for s in range(12)]
        rmse.append(np.sqrt(np.mean([(r.attribution - reference) ** 2 for r in runs])))
        reported.append(np.sqrt(np.mean([np.square(r.details["standard_errors"]) for r in runs])))
    slope = np.polyfit(np.log(ns), np.log(rmse), 1)[0]
    assert -0.7 < slope < -0.3, (slope, rmse)
    assert np.all(np.asarray(reported) / np.asarray(rmse) > 0.5) and np.all(np.asarray(reported) / rmse < 2.0)


def test_exact_enumeration_for_few_features(games: ModelRegistry) -> None:
    out = shapley(games.get("game-triple"), RawInput(features=GAME_X), max_exact_features=6, n_background=40)
    assert out.details["exact"] and out.details["standard_errors"] == [0.0] * 6
    assert out.details["n_evaluations"] == 2 ** 6
    np.testing.assert_allclose(out.attribution, exact(games, "game-triple"), atol=2e-6)


@pytest.mark.parametrize("model_id", ["tiny-image", "tiny-text", "tiny-tabular", "game-triple"])
def test_efficiency_holds_for_every_sampled_ordering(tiny_registry: ModelRegistry, games: ModelRegistry,
                                                     model_id: str) -> None:
    model = (games if model_id.startswith("game") else tiny_registry).get(model_id)
    raw = RawInput(features=GAME_X) if model_id.startswith("game") else raw_for(model, seed=2)
    p = parse_params(ShapleySampling.Params, {"n_permutations": 10, "n_segments": 12, "segmentation": "grid"})
    with model.lock:
        ctx = Context(model, model.prepare(raw), None, p, 5)
        masker = TabularFeatures(ctx, 20, 0) if model_id.startswith("game") else feature_masker(ctx, p)
        perms = draw_permutations(np.random.default_rng(1), 10, masker.n_features, antithetic=False)
        marginals, base, score, _ = sample_marginals(ctx, masker, perms, 64)
    assert marginals.shape == (10, masker.n_features) and masker.n_features > 2
    np.testing.assert_allclose(marginals.sum(axis=1), score - base, rtol=0, atol=1e-12)
    out = shapley(model, raw, max_exact_features=0, n_permutations=10, n_segments=12, segmentation="grid")
    assert abs(out.details["efficiency_gap"]) < 1e-9
    assert len(out.details["standard_errors"]) == out.details["n_features"]


def test_agrees_with_captum_at_equal_permutations(demo_registry: ModelRegistry) -> None:
    from captum.attr import ShapleyValueSampling

    from explainers.masking import segment

    model = demo_registry.get("shapes-cnn")
    image = np.load(model.folder / "samples.npz")["images"][3]
    n = 40
    ours = shapley(model, RawInput(image=image), segmentation="grid", n_segments=16, fill="zero", n_permutations=n,
                   max_exact_features=0, batch_size=64)
    labels = torch.from_numpy(segment(image, "grid", 16))
    x = model.prepare(RawInput(image=image)).x
    target = ours.target.index

    def forward(batch: torch.Tensor) -> torch.Tensor:
        return model.module(batch).softmax(-1)[:, target]

    mask = labels[None, None].expand_as(x).contiguous()
    with torch.random.fork_rng():  # Captum draws its orderings from torch's global generator: seed a copy
        torch.manual_seed(0)
        theirs = ShapleyValueSampling(forward).attribute(x, baselines=0.0, feature_mask=mask, n_samples=n,
                                                         perturbations_per_eval=64)
    first = np.unique(labels.numpy().ravel(), return_index=True)[1]
    a, b = ours.attribution.ravel()[first], theirs[0, 0].numpy().ravel()[first]
    assert np.corrcoef(a, b)[0, 1] > 0.9, (np.corrcoef(a, b)[0, 1], a, b)
    assert abs(a.sum() - b.sum()) < 1e-4  # both are efficient: the same score minus base value
