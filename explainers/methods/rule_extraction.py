"""Rule extraction: a shallow decision tree fitted to the model's own predictions, read as rules."""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from pydantic import Field

from explainers.global_base import GlobalContext, GlobalExplainer
from explainers.global_result import ModelResult, Rule
from explainers.methods._tree_rules import leaf_rules
from explainers.params import BatchParams, SeededParams
from explainers.registry import register
from explainers.types import Modality, Requires, Takes


class RuleExtractionParams(SeededParams, BatchParams):
    score: Literal["probabilities"] = Field(  # type: ignore[assignment]
        "probabilities", description="rules are fitted to the model's predicted class (its most probable)")
    max_depth: int = Field(3, ge=1, le=4, description="depth of the tree: each rule has at most this many conditions")
    min_leaf: float = Field(0.02, ge=0.001, le=0.5, description="smallest share of the training samples a rule covers")
    n_perturbed: int = Field(4000, ge=0, le=100000, description="perturbed samples drawn around the sample set "
                             "(each a sample row with noise), added to it")
    noise: float = Field(0.3, ge=0.0, le=3.0, description="noise of the perturbed samples: continuous features get "
                         "Gaussian noise of this many of their standard deviations; a categorical feature takes "
                         "another observed value with this probability (at most 1)")
    holdout: float = Field(0.25, ge=0.05, le=0.5, description="share of the samples held out to measure fidelity, "
                           "coverage and precision")
    max_samples: int = Field(4096, ge=1, le=4096, description="rows of the sample set used (a seeded subsample)")


def perturb(rng: np.random.Generator, rows: np.ndarray, n: int, categorical: np.ndarray, noise: float) -> np.ndarray:
    """`n` rows drawn from `rows` with noise: continuous columns + noise * std * N(0, 1); a categorical
    column replaced, with probability min(noise, 1), by the value of another random row."""
    picked = rows[rng.integers(0, len(rows), size=n)].astype(np.float64)
    std = rows.std(axis=0)
    out = picked + rng.normal(size=picked.shape) * noise * std
    swap = rng.random(picked.shape) < min(noise, 1.0)
    donors = rows[rng.integers(0, len(rows), size=n)]
    out[:, categorical] = np.where(swap, donors, picked)[:, categorical]
    return out


@register
class RuleExtraction(GlobalExplainer[RuleExtractionParams]):
    """Rule extraction from the model's predictions, in the spirit of DeepRED (Zilke et al. 2016). https://doi.org/10.1007/978-3-319-46307-0_29

    A decision tree of depth at most `max_depth` (scikit-learn's CART) learns the model's predicted
    class over the sample set (default: the bundle's background) and perturbed copies of it; each
    leaf is a rule. On held-out samples: `details.fidelity` (the tree agrees with the model), and
    per rule its coverage (share of the samples it covers) and precision (share of those the model
    puts in the rule's class). DeepRED itself extracts rules layer by layer; this is its pedagogical
    counterpart (Craven & Shavlik's TREPAN family): it reads only the model's predictions.
    """

    name = "rule_extraction"
    modalities = frozenset({Modality.TABULAR})
    requires = Requires.PREDICTIONS
    needs_module = False
    takes = Takes.SAMPLES
    Params = RuleExtractionParams

    def _explain(self, ctx: GlobalContext, p: RuleExtractionParams) -> ModelResult:
        from sklearn.tree import DecisionTreeClassifier

        rng = np.random.default_rng(p.seed)
        samples = ctx.sample_set()
        if len(samples) > p.max_samples:
            samples = [samples[i] for i in np.sort(rng.choice(len(samples), p.max_samples, replace=False))]
        rows = np.stack([np.asarray(s.features, dtype=np.float64) for s in samples])
        tabular = ctx.model.manifest.tabular
        assert tabular is not None
        categorical = np.array([f.kind == "categorical" for f in tabular.features])
        data = np.vstack([rows, perturb(rng, rows, p.n_perturbed, categorical, p.noise)])
        inputs = ctx.model.prepare(samples[0])
        assert inputs.native_forward is not None
        batch = torch.from_numpy(data.astype(np.float32)).to(ctx.device)
        labels = ctx.probabilities(inputs.native_forward, batch, p.batch_size or 8192, share=0.9).argmax(1)
        y = labels.cpu().numpy()
        order = rng.permutation(len(data))
        n_test = max(1, int(round(p.holdout * len(data))))
        test, train = order[:n_test], order[n_test:]
        tree = DecisionTreeClassifier(max_depth=p.max_depth, min_samples_leaf=max(1, int(p.min_leaf * len(train))),
                                      random_state=p.seed)
        tree.fit(data[train], y[train])
        fidelity = float(np.mean(tree.predict(data[test]) == y[test]))
        names, labels_ = ctx.model.feature_names, ctx.model.labels
        rules = [Rule(conditions, labels_[int(cls)], coverage, precision, support)
                 for conditions, cls, coverage, precision, support in leaf_rules(tree, data[test], y[test], names)]
        rules.sort(key=lambda r: (-r.coverage, -r.precision))
        ctx.progress(1.0)
        shares = np.bincount(y, minlength=len(labels_)) / len(y)
        details = {"fidelity": fidelity, "train_fidelity": float(np.mean(tree.predict(data[train]) == y[train])),
                   "n_rules": len(rules), "max_conditions": max((len(r.conditions) for r in rules), default=0),
                   "n_samples": len(rows), "n_perturbed": p.n_perturbed, "n_train": len(train), "n_holdout": n_test,
                   "depth": int(tree.get_depth()),
                   "predicted_shares": {labels_[k]: float(v) for k, v in enumerate(shares)}}
        return ModelResult(rules=rules, details=details)
