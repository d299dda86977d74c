"""NormLIME: global feature importance from LIME explanations of many inputs, each normalised."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from pydantic import Field

from explainers.base import Context
from explainers.global_base import GlobalContext, GlobalExplainer
from explainers.global_result import ModelResult, RankedFeature, Ranking
from explainers.masking import ImageSegments
from explainers.methods._concepts import Concepts, concept_layer
from explainers.methods._neighbourhood import LimeParams, neighbourhood
from explainers.methods._perturbation import ALL_MODALITIES
from explainers.methods.lime import lime_fit
from explainers.models.handle import LocalModel
from explainers.models.manifest import Manifest
from explainers.models.protocol import Model
from explainers.registry import register
from explainers.types import Modality, Requires, Takes


class NormLimeParams(LimeParams):
    n_samples: int = Field(300, ge=10, le=20000, description="LIME's perturbed samples per explained input")
    max_samples: int = Field(64, ge=1, le=4096, description="inputs of the sample set explained (a seeded subsample)")
    top_features: int = Field(10, ge=1, le=200, description="features kept from each local explanation: those with "
                              "the largest |weight|; their weights are normalised to unit L1 mass")
    min_count: int = Field(2, ge=1, le=4096, description="a feature is ranked when it is kept in at least this many "
                           "explanations (of its class; of all for the overall ranking)")
    n_concepts: int = Field(8, ge=2, le=64, description="image: superpixel classes (k-means on the superpixels' "
                            "activations at `layer`); the global features of image models")
    layer: str | None = Field(None, max_length=200, description="image: the layer whose activations describe "
                              "superpixels (default: the bundle's cam_layer)")


@dataclass
class _Local:
    """One explained input: its class, its kept features and their normalised weights."""

    target: int
    keys: list[str]
    shares: np.ndarray


def normalised_top(coef: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The indices of the k largest |coef| and their weights divided by the kept ones' L1 norm."""
    order = np.argsort(-np.abs(coef), kind="stable")[:k]
    norm = float(np.abs(coef[order]).sum())
    return order, (coef[order] / norm if norm > 0 else np.zeros(len(order)))


def aggregate(locals_: list[_Local], label: str, min_count: int) -> Ranking:
    """Per feature key: importance = the mean |normalised weight| over the explanations that kept it,
    direction = their mean signed normalised weight; ranked by importance."""
    total: dict[str, float] = defaultdict(float)
    signed: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    for e in locals_:
        merged: dict[str, float] = defaultdict(float)
        for key, share in zip(e.keys, e.shares):
            merged[key] += float(share)  # a word twice in a text, a concept in two superpixels: one weight
        for key, share in merged.items():
            total[key] += abs(share)
            signed[key] += share
            count[key] += 1
    ranked = [RankedFeature(key, total[key] / count[key], signed[key] / count[key], count[key])
              for key in total if count[key] >= min_count]
    ranked.sort(key=lambda f: (-f.importance, f.name))
    return Ranking(label, ranked, len(locals_))


@register
class NormLime(GlobalExplainer[NormLimeParams]):
    """NormLIME (Ahern et al. 2019). https://arxiv.org/abs/1909.04200

    Each input of the sample set (default: the bundle's own) is explained by LIME for its predicted
    class (`explainers.methods._neighbourhood`); its `top_features` weights are normalised to unit L1
    mass, so that explanations of different local models weigh alike. A global feature's importance
    for a class is the mean of its |normalised weight| over the explanations of that class that kept
    it ("all": over every explanation). Global features: tabular features; the vocabulary's words for
    text; for images, superpixel classes (`explainers.methods._concepts`), with example superpixels of
    each in `images`.
    """

    name = "normlime"
    modalities = ALL_MODALITIES
    requires = Requires.PREDICTIONS
    needs_module = False
    takes = Takes.SAMPLES
    Params = NormLimeParams

    @classmethod
    def check(cls, model: Model, params: NormLimeParams, target: int | str | None) -> None:
        super().check(model, params, target)
        if model.modality is Modality.IMAGE:
            assert isinstance(model, LocalModel)
            concept_layer(model, params.layer)

    @classmethod
    def refusal(cls, manifest: Manifest) -> str | None:
        if manifest.modality is Modality.IMAGE and manifest.remote is not None:
            return (f"method {cls.name!r} describes superpixels by a layer's activations; model {manifest.id!r} "
                    "runs on a model server, which gives only predictions")
        return super().refusal(manifest)

    def _explain(self, ctx: GlobalContext, p: NormLimeParams) -> ModelResult:
        rng = np.random.default_rng(p.seed)
        samples = ctx.sample_set()
        if len(samples) > p.max_samples:
            samples = [samples[i] for i in np.sort(rng.choice(len(samples), p.max_samples, replace=False))]
        image = ctx.model.modality is Modality.IMAGE
        concepts = Concepts(ctx.local, p.layer, p.n_concepts, p.seed) if image else None
        locals_: list[_Local] = []
        pending: list[tuple[int, np.ndarray, np.ndarray]] = []  # image: (target, superpixels kept, shares)
        n = len(samples)
        for i, raw in enumerate(samples):
            inputs = ctx.model.prepare(raw)
            local = Context(ctx.model, inputs, None, p, 1, _share(ctx, i, n))
            hood = neighbourhood(local, p, np.random.default_rng([p.seed, i]))
            coef, _, _ = lime_fit(hood.data.astype(np.float64), hood.y, hood.distances(),
                                  hood.kernel_width(p.kernel_width), p.ridge_alpha)
            ctx.evaluations += local.evaluations
            kept, shares = normalised_top(coef, p.top_features)
            if concepts is not None:
                assert isinstance(hood.masker, ImageSegments)
                concepts.add(inputs.x, hood.masker.labels, raw.image)
                pending.append((local.target(), kept, shares))
                continue
            names = _vocabulary_names(local, hood.names) if ctx.model.modality is Modality.TEXT else hood.names
            locals_.append(_Local(local.target(), [names[j] for j in kept], shares))
        details: dict[str, object] = {"n_explained": n, "top_features": p.top_features, "n_samples": p.n_samples}
        images = None
        if concepts is not None:
            assigned = concepts.fit()
            locals_ = [_Local(t, [f"concept {assigned[i][j]}" for j in kept], shares)
                       for i, (t, kept, shares) in enumerate(pending)]
            images = concepts.examples(rng)
            details["n_concepts"] = p.n_concepts
            details["layer"] = concepts.layer
        labels = ctx.model.labels
        rankings = [aggregate(locals_, "all", p.min_count)]
        for k in sorted({e.target for e in locals_}):
            rankings.append(aggregate([e for e in locals_ if e.target == k], labels[k], p.min_count))
        ctx.progress(1.0)
        return ModelResult(rankings=rankings, images=images, details=details)


def _share(ctx: GlobalContext, i: int, n: int) -> Callable[[float], None]:
    """Progress of explanation i of n as a share of the whole run (the last 5 % are the aggregation)."""
    return lambda fraction: ctx.progress(0.95 * (i + fraction) / n)


def _vocabulary_names(ctx: Context, tokens: list[str]) -> list[str]:
    """The word the model saw at each position: the token, or the unknown token for words outside the vocabulary."""
    tokenizer = ctx.model.tokenizer
    assert tokenizer is not None
    unknown = set(ctx.inputs.unknown_tokens)
    return [tokenizer.vocab[tokenizer.unk_id] if i in unknown else t for i, t in enumerate(tokens)]
