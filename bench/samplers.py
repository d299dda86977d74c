"""The Shapley samplers against exact Shapley values, next to shap's KernelExplainer, in one run.

    python bench/samplers.py [--target E] [--seeds 6] [--budgets 256,512,1024,2048,4096,8192]
                             [--games image,tabular]

Two games, each explained by our `kernel_shap` and `shapley_sampling` (through the explainer, as the
service runs them) and by shap's KernelExplainer (`l1_reg=False`: its default feature selection biases
the values when there are more than 10 features) on the same value function:

- image: the shapes model's probability of its class for `examples/shape-2.png` with a 4 x 4 grid of
  cells (16 features) hidden to their mean colour. The exact Shapley values come from all 2^16
  coalitions (65536 model evaluations, the Shapley formula over the table).
- tabular: the breast-cancer model's probability for a row (30 features), a hidden feature taking the
  whole background's values (the interventional value function of shap's KernelExplainer). 2^30
  coalitions are out of reach: the reference is Shapley value sampling with `--reference` antithetic
  orderings (200000: about three minutes), whose own relative standard error is printed (it must be
  well below the target for the figures to mean anything).

For each sampler and budget (evaluations of the value function: coalitions, a tabular one counting once
for all background rows) the relative error ||phi - phi_exact|| / ||phi_exact||, its median over
`--seeds` seeds, and the evaluations and the seconds each sampler needs to reach the target error (log-log
interpolation between the budgets; 0.01 on the image, 0.05 on the harder tabular game), each also over
shap's.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explainers.context import Context
from explainers.masking import Masker, feature_masker
from explainers.methods import get_method
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params

ROOT = Path(__file__).resolve().parent.parent
log = logging.getLogger("samplers")


@dataclass
class Game:
    name: str
    model: LocalModel
    raw: RawInput
    target: int
    params: dict[str, Any]  # the masker's params, shared by our samplers
    masker: Masker
    ctx: Context
    per_feature: Callable[[np.ndarray], np.ndarray]  # our attribution -> one value per feature

    def value(self, masks: np.ndarray) -> np.ndarray:
        return self.masker.value(self.ctx, np.asarray(masks, dtype=bool), 1024)


def make_game(name: str, registry: ModelRegistry) -> Game:
    from PIL import Image

    from explainers.masking import segment
    from explainers.methods.kernel_shap import KernelShapParams

    if name == "image":
        model = registry.get("shapes-cnn")
        raw = RawInput(image=np.asarray(Image.open(ROOT / "examples" / "shape-2.png").convert("RGB")))
        params: dict[str, Any] = {"segmentation": "grid", "n_segments": 16, "fill": "mean"}
    else:
        model = registry.get("breast-cancer-mlp")
        assert isinstance(model, LocalModel) and model.background is not None
        raw = RawInput(features=model.background[0].astype(np.float64) * 1.1)
        params = {}
    assert isinstance(model, LocalModel)
    ctx = Context(model, model.prepare(raw), None, parse_params(KernelShapParams, params), 1)
    target = ctx.target()
    masker = feature_masker(ctx, parse_params(KernelShapParams, params))
    if name == "image":
        h, w = model.manifest.image.size if model.manifest.image else (0, 0)
        labels = segment(np.zeros((h, w, 3), dtype=np.uint8), "grid", 16).ravel()

        def per_feature(attribution: np.ndarray) -> np.ndarray:
            flat = np.asarray(attribution, dtype=np.float64).ravel()
            return np.array([flat[labels == k].mean() for k in range(masker.n_features)])
    else:
        def per_feature(attribution: np.ndarray) -> np.ndarray:
            return np.asarray(attribution, dtype=np.float64).ravel()
    return Game(name, model, raw, target, params, masker, ctx, per_feature)


def exact_shapley(game: Game) -> np.ndarray:
    """The Shapley formula over the values of all 2^m coalitions."""
    m = game.masker.n_features
    codes = np.arange(2 ** m, dtype=np.int64)
    masks = ((codes[:, None] >> np.arange(m)) & 1).astype(bool)
    v = game.value(masks)
    sizes = masks.sum(axis=1)
    weight = np.array([math.factorial(s) * math.factorial(m - s - 1) / math.factorial(m) for s in range(m)])
    phi = np.empty(m)
    for i in range(m):
        without = ~masks[:, i]  # S not containing i; S + i is code | (1 << i)
        s = codes[without]
        phi[i] = float(np.sum(weight[sizes[without]] * (v[s | (1 << i)] - v[s])))
    return phi


def ours(game: Game, method: str, budget: int, seed: int) -> tuple[np.ndarray, int]:
    cls = get_method(method)
    if method == "kernel_shap":
        extra: dict[str, Any] = {"n_samples": max(16, budget - 2), "max_exact_features": 0}
    else:  # an ordering costs m new coalitions (the empty one is shared)
        pairs = max(1, budget // (2 * game.masker.n_features))
        extra = {"n_permutations": 2 * pairs, "max_exact_features": 0}
    params = parse_params(cls.Params, {**game.params, **extra, "seed": seed})
    expl = cls().explain(game.model, game.raw, params, target=game.target)
    return game.per_feature(expl.attribution), int(expl.details["n_evaluations"])  # coalitions


def shap_kernel(game: Game, budget: int, seed: int) -> tuple[np.ndarray, int]:
    import shap

    m = game.masker.n_features
    calls = [0]

    def f(z: np.ndarray) -> np.ndarray:
        calls[0] += len(z)
        return game.value(z > 0.5)

    np.random.seed(seed)
    explainer = shap.KernelExplainer(f, np.zeros((1, m)))
    values = explainer.shap_values(np.ones((1, m)), nsamples=budget, l1_reg=False, silent=True)
    return np.asarray(values, dtype=np.float64).reshape(-1)[:m], calls[0]


def needed(budgets: list[int], errors: list[float], target: float) -> float | None:
    """Evaluations at which the error curve crosses the target (log-log interpolation), None if it does not."""
    for (b0, e0), (b1, e1) in zip(zip(budgets, errors), zip(budgets[1:], errors[1:])):
        if e0 <= target:
            return float(b0)
        if e1 <= target:
            t = (math.log(target) - math.log(e0)) / (math.log(e1) - math.log(e0))
            return float(math.exp(math.log(b0) + t * (math.log(b1) - math.log(b0))))
    return float(budgets[0]) if errors and errors[0] <= target else None


def reference(game: Game, orderings: int) -> tuple[np.ndarray, float]:
    """Exact for up to 16 features; else the mean of Shapley-sampling runs of 20000 orderings each, with
    the relative standard error of that mean."""
    if game.masker.n_features <= 16:
        return exact_shapley(game), 0.0
    cls = get_method("shapley_sampling")
    runs, errors = [], []
    for k in range(max(1, orderings // 20000)):
        params = parse_params(cls.Params, {**game.params, "n_permutations": min(orderings, 20000),
                                           "max_exact_features": 0, "seed": 12345 + k})
        expl = cls().explain(game.model, game.raw, params, target=game.target)
        runs.append(game.per_feature(expl.attribution))
        errors.append(np.asarray(expl.details["standard_errors"], dtype=np.float64))
    phi = np.mean(runs, axis=0)
    se = np.sqrt(np.sum(np.square(errors), axis=0)) / len(runs)
    return phi, float(np.linalg.norm(se) / np.linalg.norm(phi))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=None,
                        help="relative error to reach (default: 0.01 on the image game, 0.05 on the tabular one)")
    parser.add_argument("--seeds", type=int, default=6)
    parser.add_argument("--budgets", default="256,512,1024,2048,4096,8192")
    parser.add_argument("--games", default="image,tabular")
    parser.add_argument("--reference", type=int, default=200000, help="tabular: orderings of the reference")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_grad_enabled(False)
    budgets = [int(b) for b in args.budgets.split(",")]
    registry = ModelRegistry(ROOT / "models", device="cpu")
    samplers: dict[str, Callable[[Game, int, int], tuple[np.ndarray, int]]] = {
        "kernel_shap": lambda g, b, s: ours(g, "kernel_shap", b, s),
        "shapley_sampling": lambda g, b, s: ours(g, "shapley_sampling", b, s),
        "shap KernelExplainer": shap_kernel,
    }
    for name in args.games.split(","):
        game = make_game(name, registry)
        target = args.target or {"image": 0.01, "tabular": 0.05}[name]
        t0 = time.perf_counter()
        exact, ref_error = reference(game, args.reference)
        kind = f"exact (all 2^{game.masker.n_features} coalitions)" if ref_error == 0 else (
            f"Shapley sampling, {args.reference} orderings (its relative standard error {ref_error:.4f})")
        print(f"\n{name}: {game.masker.n_features} features, reference {kind}, {time.perf_counter() - t0:.1f} s")
        print(f"{'sampler':22s} " + " ".join(f"{b:>8d}" for b in budgets)
              + f"   evals to {target:<5}  vs shap   s to {target:<5}  vs shap")
        reached: dict[str, tuple[float, float] | None] = {}
        rows = []
        for label, run in samplers.items():
            run(game, budgets[0], 999)  # warm up (imports, first calls): not timed
            medians, spent, seconds = [], [], []
            for budget in budgets:
                errs, evals = [], []
                t0 = time.perf_counter()
                for seed in range(args.seeds):
                    phi, used = run(game, budget, seed)
                    errs.append(float(np.linalg.norm(phi - exact) / np.linalg.norm(exact)))
                    evals.append(used)
                seconds.append((time.perf_counter() - t0) / args.seeds)
                medians.append(float(np.median(errs)))
                spent.append(int(np.median(evals)))
            hit = needed(spent, medians, target)
            # the time at that point: the same interpolation on the seconds per run
            secs = None if hit is None else float(np.exp(np.interp(np.log(hit), np.log(spent), np.log(seconds))))
            reached[label] = None if hit is None or secs is None else (hit, secs)
            rows.append((label, medians, spent))
        base = reached["shap KernelExplainer"]
        for label, medians, spent in rows:
            got = reached[label]
            if got is None:
                cells = f"{'not reached':>15}  {'–':>7}   {'–':>10}  {'–':>7}"
            else:
                ratio = (f"{got[0] / base[0]:7.2f}", f"{got[1] / base[1]:7.2f}") if base else ("      –", "      –")
                cells = f"{round(got[0]):>15}  {ratio[0]}   {got[1]:10.3f}  {ratio[1]}"
            print(f"{label:22s} " + " ".join(f"{e:8.4f}" for e in medians) + f"   {cells}")
            print(f"{'  (evaluations)':22s} " + " ".join(f"{e:8d}" for e in spent))
    print(f"\nerror: median over {args.seeds} seeds of ||phi - reference|| / ||reference||; evaluations: "
          "coalitions (a tabular one is the model on every background row)")


if __name__ == "__main__":
    main()
