"""Anchors: the KL-LUCB / beam search alone, then the explainer on tabular, text and image models."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence

import numpy as np
import pytest
import torch

from explainers.base import Context
from explainers.methods import anchors as anchors_module  # noqa: F401  (registers the method)
from explainers.methods._anchor_search import Anchor, AnchorSearch, Sampled, SearchConfig, kl_bernoulli, kl_bounds
from explainers.methods.anchors import Anchors, AnchorsParams, TabularSpace, keeps_class, make_space
from explainers.models.handle import LocalModel, RawInput
from explainers.params import parse_params
from tests.explainers.conftest import raw_for

log = logging.getLogger(__name__)


# -- the search alone, on a synthetic problem ---------------------------------------------------
STRENGTH = np.array([0.8, 0.7, 0.3, 0.2, 0.1, 0.05])  # precision(A) = 1 - prod_{i in A} (1 - s_i)
COVER = np.array([0.4, 0.5, 0.9, 0.9, 0.9, 0.9])  # coverage(A) = prod_{i in A} c_i


def true_precision(anchor: Anchor) -> float:
    return float(1 - np.prod(1 - STRENGTH[list(anchor)]))


class FakeSampler:
    """Bernoulli draws with the known precision of each anchor; counts calls and draws."""

    def __init__(self, seed: int, precision=true_precision) -> None:
        self.rng = np.random.default_rng(seed)
        self.precision = precision
        self.calls = self.draws = 0

    def __call__(self, anchors: Sequence[Anchor], counts: Sequence[int]) -> list[Sampled]:
        self.calls += 1
        self.draws += sum(counts)
        return [self.draw(a, n) for a, n in zip(anchors, counts)]

    def draw(self, anchor: Anchor, n: int) -> Sampled:
        return self.rng.random(n) < self.precision(anchor), None


class MaskSampler(FakeSampler):
    """Predicates kept independently with probability 1/2 (anchored ones always); the model
    keeps its class iff predicates 0 and 1 are both kept: precision 1/4, 1/2 or 1."""

    def draw(self, anchor: Anchor, n: int) -> Sampled:
        kept = self.rng.random((n, len(STRENGTH))) < 0.5
        kept[:, list(anchor)] = True
        return kept[:, 0] & kept[:, 1], kept if self.precision is not None else None


def coverage(anchor: Anchor) -> float:
    return float(np.prod(COVER[list(anchor)]))


def test_kl_bounds_solve_the_kl_equation():
    hits, n = np.array([0.0, 5, 45, 50, 90]), np.array([50.0, 50, 50, 50, 100])
    lb, ub = kl_bounds(hits, n, 2.3)
    mean = hits / n
    assert np.all(lb <= mean) and np.all(mean <= ub)
    for bound in (lb, ub):
        kl = n * kl_bernoulli(mean, bound)
        assert np.all((np.abs(kl - 2.3) < 1e-3) | (bound == 0) | (bound == 1))


def test_kl_lucb_picks_the_truly_best_arms_with_high_probability():
    precisions = np.array([0.9, 0.6, 0.85, 0.5, 0.4, 0.3, 0.55, 0.1])
    arms: list[Anchor] = [(i,) for i in range(len(precisions))]
    config = SearchConfig(delta=0.1, epsilon=0.05, beam_size=2, samples_per_round=20, budget=100_000)
    hits = 0
    for seed in range(20):
        sampler = FakeSampler(seed, lambda a: precisions[a[0]])
        search = AnchorSearch(len(arms), sampler, coverage, config)
        best = search.best_arms(arms)
        hits += set(best) == {(0,), (2,)}
        assert sampler.draws == search.used <= config.budget
    assert hits >= 18  # 1 - delta of the runs at least (it is conservative: usually all)


def test_beam_search_finds_the_smallest_valid_anchor_with_the_largest_coverage():
    config = SearchConfig(threshold=0.9, beam_size=3, samples_per_round=50, budget=50_000)
    found = []
    for seed in range(10):
        sampler = FakeSampler(seed)
        result = AnchorSearch(len(STRENGTH), sampler, coverage, config).run()
        assert result.valid and not result.budget_exhausted
        assert sampler.draws == result.evaluations <= config.budget
        assert len(result.prefix_precisions) == len(result.anchor) + 1
        found.append(frozenset(result.anchor))
    # singles are below 0.9; {0,1} (0.94) is the only valid pair: 3 predicates are never needed
    assert found.count(frozenset({0, 1})) >= 9, found
    assert abs(coverage((0, 1)) - 0.2) < 1e-12


def test_reusing_parent_samples_is_exact_and_saves_evaluations():
    used = {}
    for reuse in (True, False):
        draws = []
        for seed in range(5):
            sampler = MaskSampler(seed, true_precision if reuse else None)
            result = AnchorSearch(len(STRENGTH), sampler, lambda a: 0.5 ** len(a), SearchConfig()).run()
            # inherited samples all keep both predicates, else the precision would be below 1
            assert set(result.anchor) == {0, 1} and result.valid and result.precision == 1.0
            draws.append(sampler.draws)
        used[reuse] = np.mean(draws)
    assert used[True] < 0.95 * used[False], used


def test_the_search_respects_its_budget_and_says_so():
    for budget in (100, 437, 2_000):
        sampler = FakeSampler(0)
        config = SearchConfig(threshold=0.999, samples_per_round=64, budget=budget)
        result = AnchorSearch(len(STRENGTH), sampler, coverage, config).run()
        assert result.budget_exhausted and not result.valid
        assert sampler.draws == result.evaluations == budget


def test_an_always_kept_prediction_gets_the_empty_anchor():
    sampler = FakeSampler(0, lambda a: 1.0)
    result = AnchorSearch(5, sampler, coverage, SearchConfig()).run()
    assert result.anchor == () and result.valid and result.coverage == 1.0


# -- the explainer ----------------------------------------------------------------------------------
def explain(model: LocalModel, raw: RawInput, **params):
    p = parse_params(Anchors.Params, params)
    return Anchors().explain(model, raw, p), p


def fresh_precision(model: LocalModel, raw: RawInput, p: AnchorsParams, anchor: list[int], n: int = 5000) -> float:
    """Precision of `anchor` on fresh samples of the same conditional distribution, another seed."""
    ctx = Context(model, model.prepare(raw), None, p, 5)
    space = make_space(ctx, p, np.random.default_rng(p.seed + 10_007))
    return float(keeps_class(ctx, space, space.draw(tuple(anchor), n), 1024, n).mean())


def demo(registry, name: str) -> LocalModel:
    return registry.get(name)  # the shipped bundle: missing is a failure


def test_breast_cancer_anchors_hold_on_fresh_samples(demo_registry):
    from demos.tabular import load_split

    model = demo(demo_registry, "breast-cancer-mlp")
    x_test = load_split()[1]
    for i in range(6):
        raw = RawInput(features=x_test[i].astype(np.float64))
        start = time.perf_counter()
        e, p = explain(model, raw, seed=i)
        wall = time.perf_counter() - start
        d = e.details
        fresh = fresh_precision(model, raw, p, d["features"])
        log.info("breast-cancer row %d: %s precision %.3f (fresh %.3f) coverage %.3f, %d evaluations, %.3f s",
                 i, d["anchor"], d["precision"], fresh, d["coverage"], d["n_evaluations"], wall)
        assert d["valid"] and not d["budget_exhausted"]
        assert 1 <= len(d["anchor"]) == len(d["features"]) and all(model.feature_names[f] in c for f, c in
                                                                    zip(d["features"], d["anchor"]))
        assert fresh >= p.threshold - 0.03
        assert 0 < d["coverage"] <= 1
        assert d["n_evaluations"] == d["model_evaluations"] <= p.max_evaluations
        assert e.attribution.shape == (30,) and np.count_nonzero(e.attribution) == len(d["features"])
        assert e.attribution[d["features"][0]] == 1.0


@pytest.mark.parametrize("mode", ["conditional", "replace"])
def test_tabular_samples_keep_the_anchored_features_in_x_bins(tiny_registry, mode):
    model = tiny_registry.get("tiny-tabular")
    raw = raw_for(model, 1)
    p = parse_params(Anchors.Params, {"tabular_sampling": mode})
    space = make_space(Context(model, model.prepare(raw), None, p, 5), p, np.random.default_rng(0))
    assert isinstance(space, TabularSpace)
    anchor = (0, 2)
    draws = space.draw(anchor, 400)
    bins = space.disc.bins(draws)
    assert np.array_equal(bins[:, anchor], np.broadcast_to(space.x_bins[list(anchor)], (400, 2)))
    is_row = (draws[:, None, :] == space.rows[None]).all(-1).any(1)
    assert is_row.all() if mode == "conditional" else not is_row.all()
    for f in (1, 3):  # unanchored features keep background values
        assert np.isin(draws[:, f], space.rows[:, f]).all()
    exact = space.in_bin[:, list(anchor)].all(1).mean()  # the share of background rows the anchor holds for
    assert 0 < space.coverage(anchor) == exact < 1


def test_sentiment_anchors_name_sentiment_words_and_hold(demo_registry):
    from demos.sentiment import generate

    model = demo(demo_registry, "sentiment-cnn")
    examples = [ex for ex in generate(40, seed=777) if any(ex.sentiment_mask)][:8]
    with_word = 0
    for k, ex in enumerate(examples):
        raw = RawInput(text=ex.text)
        e, p = explain(model, raw, seed=k)
        d = e.details
        assert d["valid"] and len(d["positions"]) == len(d["anchor"])
        with_word += any(ex.sentiment_mask[i] for i in d["positions"])
        assert fresh_precision(model, raw, p, d["positions"], 2000) >= p.threshold - 0.03
        assert all(f"'{e.tokens[i]}'" in c for i, c in zip(d["positions"], d["anchor"]))
    assert with_word >= 0.75 * len(examples)


def test_image_anchor_of_superpixels_holds_on_fresh_samples(tiny_registry):
    model = tiny_registry.get("tiny-image")
    for seed in range(3):
        raw = raw_for(model, seed)
        e, p = explain(model, raw, segmentation="grid", n_segments=16, seed=seed)
        d = e.details
        sp = d["superpixels"]
        assert d["valid"] and e.attribution.shape == (16, 16)
        assert set(np.unique(e.attribution[e.attribution > 0])) == {1 - i / len(sp) for i in range(len(sp))}
        assert fresh_precision(model, raw, p, sp, 2000) >= p.threshold - 0.03


def test_seeded_runs_repeat_and_the_budget_holds(tiny_registry):
    model = tiny_registry.get("tiny-tabular")
    raw = raw_for(model, 1)
    a, _ = explain(model, raw, seed=3, threshold=0.99)
    b, _ = explain(model, raw, seed=3, threshold=0.99)
    np.testing.assert_array_equal(a.attribution, b.attribution)
    assert a.details == b.details
    fractions: list[float] = []
    p = parse_params(Anchors.Params, {"seed": 3, "threshold": 0.999, "max_evaluations": 700})
    e = Anchors().explain(model, raw, p, target=2, progress=fractions.append)
    assert e.details["budget_exhausted"] and e.details["n_evaluations"] == e.details["model_evaluations"] <= 700
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and fractions[0] >= 0


def test_one_model_call_per_sampling_round(tiny_registry, monkeypatch):
    model = tiny_registry.get("tiny-tabular")
    calls = {"predict": 0, "draw": 0}
    predict, draw = Context.predict, AnchorSearch._draw

    def counting_predict(self, *args, **kwargs) -> torch.Tensor:
        calls["predict"] += 1
        return predict(self, *args, **kwargs)

    def counting_draw(self, *args, **kwargs) -> None:
        calls["draw"] += 1
        draw(self, *args, **kwargs)

    monkeypatch.setattr(Context, "predict", counting_predict)
    monkeypatch.setattr(AnchorSearch, "_draw", counting_draw)
    e, _ = explain(model, raw_for(model, 2), batch_size=4096)
    assert calls["predict"] == calls["draw"] > 1 and e.details["n_evaluations"] > 0
