"""Named colormaps as 256x3 uint8 lookup tables, built from anchor colours.

Each map is a short list of ``(position, (r, g, b))`` anchors in [0, 1] x
[0, 255], linearly interpolated to 256 entries. Sequential maps suit
non-negative attributions; diverging maps have a light, neutral centre at
0.5 and are meant for signed attributions (negative low, positive high).
"""

from __future__ import annotations

from functools import cache

import numpy as np

Anchor = tuple[float, tuple[int, int, int]]


def _even(*hexes: str) -> list[Anchor]:
    """Anchors from hex colours placed evenly over [0, 1]."""
    n = len(hexes) - 1
    return [
        (i / n, (int(h[1:3], 16), int(h[3:5], 16), int(h[5:7], 16)))
        for i, h in enumerate(hexes)
    ]


_ANCHORS: dict[str, list[Anchor]] = {
    # Sequential.
    "jet": [
        (0.0, (0, 0, 128)),
        (0.125, (0, 0, 255)),
        (0.375, (0, 255, 255)),
        (0.625, (255, 255, 0)),
        (0.875, (255, 0, 0)),
        (1.0, (128, 0, 0)),
    ],
    "viridis": _even(
        "#440154", "#482878", "#3e4a89", "#31688e", "#26828e",
        "#1f9e89", "#35b779", "#6dcd59", "#b4de2c", "#fde725",
    ),
    "inferno": _even(
        "#000004", "#1b0c41", "#4a0c6b", "#781c6d", "#a52c60",
        "#cf4446", "#ed6925", "#fb9b06", "#f7d13d", "#fcffa4",
    ),
    "magma": _even(
        "#000004", "#180f3d", "#440f76", "#721f81", "#9e2f7f",
        "#cd4071", "#f1605d", "#fd9668", "#fec98d", "#fcfdbf",
    ),
    "hot": [
        (0.0, (10, 0, 0)),
        (0.375, (255, 0, 0)),
        (0.75, (255, 255, 0)),
        (1.0, (255, 255, 255)),
    ],
    "gray": [(0.0, (0, 0, 0)), (1.0, (255, 255, 255))],
    # Diverging: low = negative, high = positive.
    "bwr": [(0.0, (0, 0, 255)), (0.5, (255, 255, 255)), (1.0, (255, 0, 0))],
    # ColorBrewer RdBu reversed so that red marks positive values.
    "RdBu": _even(
        "#053061", "#2166ac", "#4393c3", "#92c5de", "#d1e5f0", "#f7f7f7",
        "#fddbc7", "#f4a582", "#d6604d", "#b2182b", "#67001f",
    ),
    # Moreland's cool-warm endpoints with a light grey centre.
    "coolwarm": _even(
        "#3b4cc0", "#6282ea", "#8db0fe", "#b8d0f9", "#dddddd",
        "#f5c4ad", "#f49a7b", "#de604d", "#b40426",
    ),
    "seismic": [
        (0.0, (0, 0, 77)),
        (0.25, (0, 0, 255)),
        (0.5, (255, 255, 255)),
        (0.75, (255, 0, 0)),
        (1.0, (128, 0, 0)),
    ],
}

SEQUENTIAL: frozenset[str] = frozenset({"jet", "viridis", "inferno", "magma", "hot", "gray"})
DIVERGING: frozenset[str] = frozenset({"bwr", "RdBu", "coolwarm", "seismic"})
COLORMAPS: frozenset[str] = SEQUENTIAL | DIVERGING


@cache
def lut(name: str) -> np.ndarray:
    """The read-only 256x3 uint8 table for colormap ``name``."""
    if name not in COLORMAPS:
        raise ValueError(f"unknown colormap {name!r}; choose one of {sorted(COLORMAPS)}")
    anchors = _ANCHORS[name]
    pos = np.array([p for p, _ in anchors], dtype=np.float64)
    rgb = np.array([c for _, c in anchors], dtype=np.float64)
    x = np.linspace(0.0, 1.0, 256)
    table = np.stack([np.interp(x, pos, rgb[:, c]) for c in range(3)], axis=1)
    out = np.clip(np.rint(table), 0, 255).astype(np.uint8)
    out.setflags(write=False)
    return out


def default_colormap(signed: bool) -> str:
    """``"bwr"`` for signed maps, ``"jet"`` for non-negative ones."""
    return "bwr" if signed else "jet"


def indices(values01: np.ndarray) -> np.ndarray:
    """LUT indices (uint8) for values in [0, 1]; out-of-range clipped, NaN -> 0."""
    v = np.array(values01, dtype=np.float32)  # a copy, safe to change in place
    v *= np.float32(255.0)
    v += np.float32(0.5)
    np.clip(v, 0.0, 255.0, out=v)  # NaN survives clip ...
    v[np.isnan(v)] = 0.0  # ... so zero it explicitly
    return v.astype(np.uint8)


def apply(values01: np.ndarray, name: str) -> np.ndarray:
    """Colour values in [0, 1] with colormap ``name``: shape ``[..., 3]`` uint8."""
    return np.take(lut(name), indices(values01), axis=0)  # much faster than lut[idx]
