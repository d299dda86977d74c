"""Image figures: every style decoded from its PNG, its size, its picture and its legend region."""

from __future__ import annotations

import io
import time

import numpy as np
import pytest
from PIL import Image

from explainers.render import colormaps
from explainers.render.figure import FigureOptions, caption_text, image_figure, image_figure_png
from explainers.render.legend import bar_colours, plan
from explainers.render.styles import STYLES, picture, resize, target_size

RNG = np.random.default_rng(5)
IMAGE = RNG.integers(0, 256, size=(64, 64, 3), dtype=np.uint8)
CELLS = RNG.normal(size=(8, 8)).astype(np.float32)
SIGNED_MAP = np.kron(CELLS, np.ones((8, 8), np.float32))  # 8x8 cells, like a CAM resized to the input
UNSIGNED_MAP = np.abs(SIGNED_MAP)
CAPTION = caption_text("gradcam", "triangle", 0.97)


def decode(png: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(png)) as im:
        assert im.format == "PNG" and im.mode == "RGB"
        return np.asarray(im)


def ink(region: np.ndarray) -> int:
    """Dark pixels (text, lines) in a region of a white panel."""
    return int((region.astype(int).sum(axis=2) < 360).sum())


@pytest.mark.parametrize("signed", [False, True])
@pytest.mark.parametrize("style", STYLES)
def test_each_style_decodes_with_its_size_picture_and_legend(style: str, signed: bool) -> None:
    attr = SIGNED_MAP if signed else UNSIGNED_MAP
    options = FigureOptions(style=style)  # type: ignore[arg-type]
    png = image_figure_png(IMAGE, attr, signed=signed, options=options, caption=CAPTION, label="triangle")
    img = decode(png)
    layout, _ = plan((256, 256), caption=True, colorbar=True)
    assert img.shape == (layout.height, layout.width, 3)
    assert layout.width == 256 and layout.height > 256 + 40  # a 64 px input comes back at 256 px, legend under it

    x0, y0, x1, y1 = layout.picture
    photo, values = resize(IMAGE, attr, (256, 256))
    expected, scale = picture(photo, values, style, signed=signed)  # type: ignore[arg-type]
    np.testing.assert_array_equal(img[y0:y1, x0:x1], expected)

    assert layout.caption is not None and layout.bar is not None
    cx0, cy0, cx1, cy1 = layout.caption
    assert ink(img[cy0:cy1, cx0:cx1]) > 60, "no caption text"
    bx0, by0, bx1, by1 = layout.bar
    row = img[(by0 + by1) // 2, bx0:bx1].astype(int)
    colours = bar_colours(scale, bx1 - bx0).astype(int)
    skip = np.zeros(bx1 - bx0, dtype=bool)  # contour and mask ticks are drawn across the bar
    for level in scale.levels:
        skip[max(0, round(level * (bx1 - bx0 - 1)) - 2):round(level * (bx1 - bx0 - 1)) + 3] = True
    if scale.threshold is not None:
        skip[np.abs(row - colours).max(axis=1) > 0] = True
        assert skip.sum() <= 4, "the mask's threshold tick is the only mark across the bar"
    assert np.abs(row[~skip] - colours[~skip]).max() <= 1, "the colour bar is not the picture's scale"
    below = img[by1 + 2:layout.height - 2, bx0:bx1]
    assert ink(below) > 80, "no value range or sign meaning under the bar"
    assert scale.high > scale.low
    if signed and style != "graymap":
        assert scale.centred and scale.low == pytest.approx(-scale.high)
        peak = float(np.abs(attr).max())
        assert scale.high == pytest.approx(peak)
        left, right = below[:, : (bx1 - bx0) // 3], below[:, 2 * (bx1 - bx0) // 3:]
        assert ink(left) > 30 and ink(right) > 30, "each sign's meaning is written at its end of the bar"


def test_styles_look_as_they_should() -> None:
    photo, values = resize(IMAGE, SIGNED_MAP, (64, 64))
    gray, gscale = picture(photo, values, "graymap", signed=True)
    assert (gray[..., 0] == gray[..., 1]).all() and (gray[..., 1] == gray[..., 2]).all()
    assert gscale.low == 0.0 and gscale.quantity == "|attribution|"
    diverging, _ = picture(photo, np.zeros_like(values), "diverging", signed=False)
    assert (diverging == colormaps.lut("bwr")[128]).all()  # zero is the neutral centre
    masked, mscale = picture(photo, values, "mask", signed=True, mask_percent=25.0)
    kept = (masked == photo).all(axis=2)
    assert 0.2 <= kept.mean() <= 0.3
    assert mscale.threshold is not None and values[kept].min() >= mscale.threshold
    contour, cscale = picture(photo, values, "contour", signed=True)
    palette = {tuple(c) for c in colormaps.apply(np.array(cscale.levels), cscale.colormap).tolist()}
    on_lines = {tuple(p) for p in contour.reshape(-1, 3).tolist()} & palette
    assert len(on_lines) >= 2, "no contour lines in the level colours"
    heat, _ = picture(photo, values, "heatmap", signed=True)
    over, _ = picture(photo, values, "overlay", signed=True, alpha=0.0)
    np.testing.assert_array_equal(over, photo)
    assert not np.array_equal(heat, over)
    with pytest.raises(ValueError):
        picture(photo, values, "sparkles", signed=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        picture(photo, values, "mask", signed=True, mask_percent=0.0)


def test_size_enlarges_map_cells_nearest_and_the_photo_bilinear() -> None:
    assert target_size(64, 64, None) == (256, 256)
    assert target_size(24, 30, None) == (216, 270)  # a whole factor (9)
    assert target_size(700, 1000, None) == (700, 1000)  # large enough: as sent
    assert target_size(64, 32, 512) == (512, 256)
    photo, values = resize(IMAGE, SIGNED_MAP, (512, 512))
    cells = values.reshape(8, 64, 8, 64)
    assert (cells == cells[:, :1, :, :1]).all(), "a map cell is one flat block, not a blur"
    expected = np.asarray(Image.fromarray(IMAGE).resize((512, 512), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(photo, expected)
    nearest = np.repeat(np.repeat(IMAGE, 8, axis=0), 8, axis=1)
    assert np.abs(photo.astype(int) - nearest).mean() > 5  # interpolated, not blocks of repeated pixels


@pytest.mark.parametrize("size", [256, 512])
def test_output_size_and_bare_figures(size: int) -> None:
    options = FigureOptions(size=size, caption=False, colorbar=False)
    arr, layout = image_figure(IMAGE, UNSIGNED_MAP, signed=False, options=options, caption=CAPTION, label="x")
    assert arr.shape == (size, size, 3) and layout.caption is None and layout.bar is None
    with_legend, layout = image_figure(IMAGE, UNSIGNED_MAP, signed=False, options=FigureOptions(size=size),
                                       caption=CAPTION, label="x")
    assert with_legend.shape[1] == size and with_legend.shape[0] > size
    np.testing.assert_array_equal(with_legend[:size], arr)


def test_narrow_pictures_get_a_panel_wide_enough_to_read() -> None:
    tall = RNG.integers(0, 256, size=(300, 40, 3), dtype=np.uint8)
    arr, layout = image_figure(tall, RNG.random((300, 40)), signed=False, options=FigureOptions(),
                               caption=CAPTION, label="x")
    assert layout.width == 256 and arr.shape[1] == 256
    x0, _, x1, _ = layout.picture
    assert x1 - x0 == 40 and x0 == (256 - 40) // 2


def test_rendering_stays_fast() -> None:
    big = RNG.integers(0, 256, size=(128, 128, 3), dtype=np.uint8)
    attr = RNG.normal(size=(128, 128)).astype(np.float32)
    start = time.perf_counter()
    for style in STYLES:
        image_figure_png(big, attr, signed=True, options=FigureOptions(style=style, size=512),  # type: ignore[arg-type]
                         caption=CAPTION, label="x")
    assert (time.perf_counter() - start) / len(STYLES) < 0.25, "a 512 px figure takes more than 250 ms"
