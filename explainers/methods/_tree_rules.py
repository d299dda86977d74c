"""A fitted scikit-learn decision tree read as rules: one per leaf, its path's tests merged per feature."""

from __future__ import annotations

from typing import Any

import numpy as np


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _conditions(bounds: dict[int, list[float]], names: list[str]) -> list[str]:
    """`lo < f <= hi` per feature (one side when the other is open), in the order first tested."""
    out = []
    for feature, (lo, hi) in bounds.items():
        name = names[feature]
        if lo > -np.inf and hi < np.inf:
            out.append(f"{_fmt(lo)} < {name} <= {_fmt(hi)}")
        elif hi < np.inf:
            out.append(f"{name} <= {_fmt(hi)}")
        else:
            out.append(f"{name} > {_fmt(lo)}")
    return out


def leaf_rules(tree: Any, x_test: np.ndarray, y_test: np.ndarray,
               names: list[str]) -> list[tuple[list[str], int, float, float, int]]:
    """(conditions, class, coverage, precision, support) per leaf of a fitted `DecisionTreeClassifier`:
    coverage and precision measured on held-out rows `x_test` and the model's classes `y_test` there."""
    t = tree.tree_
    leaves = tree.apply(x_test)
    out = []

    def walk(node: int, bounds: dict[int, list[float]]) -> None:
        if t.children_left[node] == -1:
            cls = int(tree.classes_[int(np.argmax(t.value[node][0]))])
            covered = leaves == node
            support = int(covered.sum())
            precision = float(np.mean(y_test[covered] == cls)) if support else 0.0
            out.append((_conditions(bounds, names), cls, support / max(1, len(x_test)), precision, support))
            return
        f, threshold = int(t.feature[node]), float(t.threshold[node])
        lo, hi = bounds.get(f, [-np.inf, np.inf])
        walk(int(t.children_left[node]), {**bounds, f: [lo, min(hi, threshold)]})
        walk(int(t.children_right[node]), {**bounds, f: [max(lo, threshold), hi]})

    walk(0, {})
    return out
