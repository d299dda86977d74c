"""Tests for the renderers: colormaps, image overlays, token HTML, bar charts."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from explainers.render import colormaps
from explainers.render.image import encode_png, heatmap_png, normalize_map, overlay, overlay_png
from explainers.render.tabular import AXIS, WIDTH, bar_chart_png, chart_height


def _decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB"))


def _luminance(rgb: np.ndarray) -> np.ndarray:
    return rgb.astype(np.float64) @ np.array([0.2126, 0.7152, 0.0722])


# --- colormaps -------------------------------------------------------------


def test_colormap_sets() -> None:
    assert colormaps.COLORMAPS == colormaps.SEQUENTIAL | colormaps.DIVERGING
    assert not colormaps.SEQUENTIAL & colormaps.DIVERGING
    assert colormaps.default_colormap(signed=False) == "jet"
    assert colormaps.default_colormap(signed=True) == "bwr"


@pytest.mark.parametrize("name", sorted(colormaps.COLORMAPS))
def test_lut_shape_and_cache(name: str) -> None:
    table = colormaps.lut(name)
    assert table.shape == (256, 3) and table.dtype == np.uint8
    assert colormaps.lut(name) is table
    assert not table.flags.writeable
    assert len({tuple(c) for c in table.tolist()}) > 64  # a real ramp, not a few flat steps


def test_unknown_colormap() -> None:
    with pytest.raises(ValueError):
        colormaps.lut("rainbow-unicorn")


@pytest.mark.parametrize("name", sorted(colormaps.DIVERGING))
def test_diverging_neutral_centre_distinct_ends(name: str) -> None:
    table = colormaps.lut(name).astype(int)
    centre = table[127:129]
    assert (centre > 180).all(), centre
    assert (centre.max(axis=1) - centre.min(axis=1) < 40).all()
    low, high = table[0], table[255]
    assert low[2] > low[0] + 60  # negative end is blue
    assert high[0] > high[2] + 60  # positive end is red
    assert np.abs(low - high).sum() > 200


@pytest.mark.parametrize("name", ["viridis", "inferno", "magma", "gray"])
def test_perceptual_maps_monotonic_luminance(name: str) -> None:
    lum = _luminance(colormaps.lut(name))
    assert (np.diff(lum) >= -0.5).all()
    assert lum[-1] - lum[0] > 150


def test_apply_maps_ends_and_clips() -> None:
    v = np.array([[0.0, 1.0], [-3.0, np.nan]])
    out = colormaps.apply(v, "jet")
    table = colormaps.lut("jet")
    assert out.shape == (2, 2, 3) and out.dtype == np.uint8
    assert (out[0, 0] == table[0]).all() and (out[0, 1] == table[255]).all()
    assert (out[1, 0] == table[0]).all() and (out[1, 1] == table[0]).all()


# --- normalize_map / overlay -----------------------------------------------


def test_normalize_unsigned() -> None:
    m = normalize_map(np.array([[-2.0, 0.0], [1.0, 4.0]]), signed=False)
    assert m.dtype == np.float32
    np.testing.assert_allclose(m, [[0.0, 0.0], [0.25, 1.0]])


def test_normalize_unsigned_stretches_a_map_with_a_floor() -> None:
    """RISE-like maps sit on a floor well above zero: the floor maps to 0, the peak to 1."""
    m = normalize_map(np.array([0.4, 0.5, 0.8]), signed=False)
    np.testing.assert_allclose(m, [0.0, 0.25, 1.0], rtol=1e-6)
    assert (normalize_map(np.full(3, 0.7), signed=False) == 1.0).all()  # constant: full strength


def test_normalize_signed() -> None:
    m = normalize_map(np.array([[-2.0, 0.0], [1.0, 4.0]]), signed=True)
    np.testing.assert_allclose(m, [[0.25, 0.5], [0.625, 1.0]])
    assert m.min() >= 0.0 and m.max() <= 1.0


def test_normalize_zero_and_nonfinite() -> None:
    z = np.zeros((3, 4))
    assert (normalize_map(z, signed=False) == 0.0).all()
    assert (normalize_map(z, signed=True) == 0.5).all()
    m = normalize_map(np.array([np.nan, np.inf, -np.inf, 2.0]), signed=False)
    np.testing.assert_allclose(m, [0.0, 0.0, 0.0, 1.0])
    assert np.isfinite(normalize_map(np.full((2, 2), np.nan), signed=True)).all()


@pytest.fixture
def image() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(32, 48, 3), dtype=np.uint8)


@pytest.mark.parametrize("signed", [False, True])
def test_overlay_shape_dtype(image: np.ndarray, signed: bool) -> None:
    attr = np.random.default_rng(1).normal(size=image.shape[:2])
    out = overlay(image, attr, signed=signed)
    assert out.shape == image.shape and out.dtype == np.uint8
    assert not np.array_equal(out, image)


@pytest.mark.parametrize("signed", [False, True])
def test_overlay_alpha_zero_is_identity(image: np.ndarray, signed: bool) -> None:
    attr = np.random.default_rng(2).normal(size=image.shape[:2])
    np.testing.assert_array_equal(overlay(image, attr, signed=signed, alpha=0.0), image)


@pytest.mark.parametrize(("signed", "cmap"), [(False, "viridis"), (True, "RdBu"), (False, "bwr")])
def test_overlay_alpha_one_constant_map(image: np.ndarray, signed: bool, cmap: str) -> None:
    attr = np.full(image.shape[:2], 3.0)
    out = overlay(image, attr, signed=signed, colormap=cmap, alpha=1.0)
    expected = colormaps.lut(cmap)[255]
    assert (out == expected).all()


def test_overlay_unsigned_zero_pixels_keep_image(image: np.ndarray) -> None:
    attr = np.zeros(image.shape[:2])
    attr[0, 0] = 1.0
    out = overlay(image, attr, signed=False, alpha=0.8)
    np.testing.assert_array_equal(out[1:], image[1:])
    assert not np.array_equal(out[0, 0], image[0, 0])


def test_overlay_validation(image: np.ndarray) -> None:
    good = np.zeros(image.shape[:2])
    with pytest.raises(ValueError):
        overlay(image, np.zeros((5, 5)), signed=False)
    with pytest.raises(ValueError):
        overlay(image, good, signed=False, alpha=1.5)
    with pytest.raises(ValueError):
        overlay(image, good, signed=False, alpha=-0.1)
    with pytest.raises(ValueError):
        overlay(image.astype(np.float32), good, signed=False)
    with pytest.raises(ValueError):
        overlay(image, good, signed=False, colormap="nope")


def test_png_roundtrip(image: np.ndarray) -> None:
    np.testing.assert_array_equal(_decode(encode_png(image)), image)
    attr = np.random.default_rng(3).normal(size=image.shape[:2])
    out = _decode(overlay_png(image, attr, signed=True, alpha=0.6))
    np.testing.assert_array_equal(out, overlay(image, attr, signed=True, alpha=0.6))
    heat = _decode(heatmap_png(attr, signed=False, colormap="inferno"))
    assert heat.shape == (32, 48, 3)
    with pytest.raises(ValueError):
        encode_png(image, compress_level=12)


# --- tabular ---------------------------------------------------------------


def _axis_x(img: np.ndarray) -> int:
    hits = (img == np.array(AXIS)).all(axis=2).sum(axis=0)
    return int(hits.argmax())


def _is_red(px: np.ndarray) -> bool:
    r, g, b = (int(c) for c in px)
    return r > 150 and r > g + 80 and r > b + 80


def _is_blue(px: np.ndarray) -> bool:
    r, _g, b = (int(c) for c in px)
    return b > 120 and b > r + 80


def test_bar_chart_colours_and_sides() -> None:
    names = ["age", "income", "debt", "score"]
    scores = np.array([0.2, 3.0, -2.0, 0.0])
    img = _decode(bar_chart_png(names, scores, [41, 5e4, 1200.5, 0.0], title="why"))
    assert img.shape[1] == WIDTH
    x = _axis_x(img)
    col_right = img[:, x + 2]
    red_rows = np.flatnonzero([_is_red(p) for p in col_right])
    blue_left = np.flatnonzero([_is_blue(p) for p in img[:, x - 3]])
    assert red_rows.size and blue_left.size
    # The top bar is the largest |score|, which is positive: red right of the axis.
    assert red_rows.min() < blue_left.min()
    # The negative row lies left of the axis: nothing red or blue just right of it.
    y = int(blue_left[blue_left.size // 2])
    assert not _is_blue(img[y, x + 3]) and not _is_red(img[y, x + 3])
    assert not _is_red(img[y, x - 3])


def test_bar_chart_grows_and_groups_others() -> None:
    rng = np.random.default_rng(0)
    small = _decode(bar_chart_png(["a", "b"], np.array([1.0, -1.0])))
    big = _decode(bar_chart_png([f"f{i}" for i in range(8)], rng.normal(size=8)))
    assert big.shape[0] > small.shape[0]
    names = [f"f{i}" for i in range(50)]
    capped = _decode(bar_chart_png(names, rng.normal(size=50), max_features=5))
    six = _decode(bar_chart_png(names[:6], rng.normal(size=6), max_features=6))
    assert capped.shape == six.shape  # 5 rows + "45 other features"


def test_bar_chart_never_crashes() -> None:
    long = "x" * 500
    for names, scores in [
        (["a", "b", "c"], np.zeros(3)),
        ([long, "ünïcødé ✓ 名前"], np.array([1.0, -2.0])),
        (["neg"], np.array([-1.0])),
        (["nan", "ok"], np.array([np.nan, 1.0])),
        ([], np.zeros(0)),
    ]:
        img = _decode(bar_chart_png(names, scores, title=long))
        assert img.shape[1] == WIDTH
    with pytest.raises(ValueError):
        bar_chart_png(["a"], np.zeros(2))
    with pytest.raises(ValueError):
        bar_chart_png(["a"], np.zeros(1), max_features=0)


def test_bar_chart_bitmap_font_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without FreeType, Pillow's latin-1 bitmap font must not choke on unicode names."""
    from PIL import ImageFont

    from explainers.render import tabular

    monkeypatch.setattr(tabular, "font", lambda _size: ImageFont.load_default_imagefont())
    img = _decode(bar_chart_png(["名前 ✓", "b" * 300], np.array([1.0, -2.0]), [1.5, 2.0], title="名前"))
    assert img.shape == (chart_height(2, title=True), WIDTH, 3)


def test_bar_chart_shows_values_axis_label_and_uncramped_rows() -> None:
    names = [f"feature number {i}" for i in range(30)]
    scores = np.linspace(-1.0, 2.0, 30)
    img = _decode(bar_chart_png(names, scores, list(range(30)), title="t", xlabel="attribution to benign"))
    n_rows = 20 + 1  # 20 features and "10 other features"
    assert img.shape[0] == chart_height(n_rows, title=True)
    assert (img.shape[0] - chart_height(0, title=True)) / n_rows >= 24  # at least 24 px a row
    bottom = chart_height(n_rows, title=True) - 12 - 44  # the axis band under the rows
    axis_band = img[bottom:bottom + 44]
    ink = (axis_band.astype(int).sum(axis=2) < 300).sum()
    assert ink > 100, "no axis label or tick labels under the bars"
    horizontal = (axis_band == np.array(AXIS)).all(axis=2).sum(axis=1).max()
    assert horizontal > 200, "no horizontal axis line"
    value_column = img[60:200, 12 + 230 + 12:12 + 230 + 12 + 84]
    assert (value_column.astype(int).sum(axis=2) < 500).any(), "no feature values printed"
