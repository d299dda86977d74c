"""Image decoding, directly (`explainers.inputs.decode_image`) and through HTTP."""

from __future__ import annotations

import io
import json
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from explainers.inputs import decode_image
from explainers.serialize import decode_array
from tests.app.conftest import BARE, as_sent, b64, decode_png, picture_size

LIMIT = 40_000_000
ORIENTATION = 0x0112
RNG = np.random.default_rng(11)
RGB = RNG.integers(0, 256, size=(18, 26, 3), dtype=np.uint8)
_XS, _YS = np.meshgrid(np.linspace(0, 255, 26), np.linspace(0, 255, 18))
SMOOTH = np.dstack([_YS, _XS, np.full((18, 26), 128.0)]).astype(np.uint8)  # JPEG-friendly: a gradient


def encode(img: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def explain_image(client: TestClient, data: bytes, method: str = "saliency", **body: Any) -> dict[str, Any]:
    response = client.post(f"/explain/{method}", json={"model_id": "tiny-image", "input": {"image": b64(data)},
                                                       **body})
    assert response.status_code == 200, response.text[:500]
    return response.json()


def explain_upload(client: TestClient, data: bytes, name: str, method: str = "saliency",
                   output: dict[str, Any] | None = None) -> dict[str, Any]:
    fields = {"model_id": "tiny-image", **({"output": json.dumps(output)} if output else {})}
    response = client.post(f"/explain/{method}", files={"file": (name, data, "application/octet-stream")},
                           data=fields)
    assert response.status_code == 200, response.text[:500]
    return response.json()


def map_shape(result: dict[str, Any]) -> tuple[int, ...]:
    return decode_array(result["attribution"]).shape


# -- formats --------------------------------------------------------------------------------------

LOSSLESS = {
    "PNG": lambda: encode(Image.fromarray(RGB), "PNG"),
    "WEBP": lambda: encode(Image.fromarray(RGB), "WEBP", lossless=True),
    "BMP": lambda: encode(Image.fromarray(RGB), "BMP"),
}


@pytest.mark.parametrize("fmt", list(LOSSLESS))
def test_lossless_formats_decode_exactly(fmt: str) -> None:
    decoded = decode_image(LOSSLESS[fmt](), max_pixels=LIMIT)
    assert decoded.dtype == np.uint8 and decoded.shape == RGB.shape
    np.testing.assert_array_equal(decoded, RGB)


def test_jpeg_decodes_close_to_the_source() -> None:
    decoded = decode_image(encode(Image.fromarray(SMOOTH), "JPEG", quality=95), max_pixels=LIMIT)
    assert decoded.shape == SMOOTH.shape
    assert np.abs(decoded.astype(int) - SMOOTH.astype(int)).mean() < 4


def test_lossy_webp_decodes_close_to_the_source() -> None:
    decoded = decode_image(encode(Image.fromarray(SMOOTH), "WEBP", quality=95), max_pixels=LIMIT)
    assert decoded.shape == SMOOTH.shape
    assert np.abs(decoded.astype(int) - SMOOTH.astype(int)).mean() < 6


def test_gif_decodes_its_palette_colours() -> None:
    colours = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [250, 250, 250]], dtype=np.uint8)
    arr = colours[RNG.integers(0, 4, size=(18, 26))]
    decoded = decode_image(encode(Image.fromarray(arr), "GIF"), max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded, arr)


def test_animated_gif_gives_the_first_frame() -> None:
    frames = [Image.new("RGB", (12, 9), c) for c in ((255, 0, 0), (0, 0, 255))]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=50)
    decoded = decode_image(data, max_pixels=LIMIT)
    assert decoded.shape == (9, 12, 3)
    assert tuple(decoded[4, 6]) == (255, 0, 0)


@pytest.mark.parametrize("fmt,kwargs", [("PNG", {}), ("JPEG", {"quality": 90}), ("WEBP", {"lossless": True}),
                                        ("GIF", {}), ("BMP", {})])
def test_every_format_through_http(client: TestClient, fmt: str, kwargs: dict[str, Any]) -> None:
    data = encode(Image.fromarray(SMOOTH), fmt, **kwargs)
    by_json = explain_image(client, data, output=BARE)
    assert map_shape(by_json) == (18, 26)
    assert decode_png(by_json["overlay_png"]).size == picture_size(18, 26)
    by_upload = explain_upload(client, data, f"image.{fmt.lower()}")
    np.testing.assert_array_equal(decode_array(by_upload["attribution"]), decode_array(by_json["attribution"]))


def test_file_name_and_declared_type_do_not_matter(client: TestClient) -> None:
    png = encode(Image.fromarray(RGB), "PNG")
    a = explain_upload(client, png, "photo.jpg")
    b = explain_upload(client, png, "no-extension")
    np.testing.assert_array_equal(decode_array(a["attribution"]), decode_array(b["attribution"]))


# -- modes ----------------------------------------------------------------------------------------

def test_grayscale_becomes_three_equal_channels() -> None:
    grey = RGB[..., 0]
    decoded = decode_image(encode(Image.fromarray(grey, mode="L"), "PNG"), max_pixels=LIMIT)
    assert decoded.shape == (*grey.shape, 3)
    for c in range(3):
        np.testing.assert_array_equal(decoded[..., c], grey)


def test_one_bit_image() -> None:
    bits = RGB[..., 0] > 127
    decoded = decode_image(encode(Image.fromarray(bits), "PNG"), max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded[..., 1], np.where(bits, 255, 0))


def test_palette_image_becomes_its_colours() -> None:
    img = Image.fromarray(RGB).quantize(colors=16)
    assert img.mode == "P"
    expected = np.asarray(img.convert("RGB"))
    decoded = decode_image(encode(img, "PNG"), max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded, expected)


def test_palette_with_a_transparent_entry_is_white_there() -> None:
    img = Image.fromarray(np.array([[0, 1], [1, 0]], dtype=np.uint8), mode="P")
    img.putpalette([10, 20, 30, 200, 100, 50] + [0] * 762)
    decoded = decode_image(encode(img, "PNG", transparency=0), max_pixels=LIMIT)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 1]) == (200, 100, 50)


def test_rgba_is_composited_over_white() -> None:
    rgba = np.zeros((2, 3, 4), dtype=np.uint8)
    rgba[0, 0] = (10, 20, 30, 0)  # fully transparent: white
    rgba[0, 1] = (10, 20, 30, 255)  # opaque: itself
    rgba[0, 2] = (0, 0, 0, 128)  # half transparent black: mid grey
    rgba[1] = (200, 0, 0, 255)
    decoded = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "PNG"), max_pixels=LIMIT)
    assert decoded.shape == (2, 3, 3)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[0, 1]) == (10, 20, 30)
    assert all(abs(int(v) - 127) <= 1 for v in decoded[0, 2])
    assert tuple(decoded[1, 0]) == (200, 0, 0)


def test_grey_with_alpha_is_composited_over_white() -> None:
    la = np.zeros((2, 2, 2), dtype=np.uint8)
    la[..., 0] = 40
    la[0, 0, 1] = 0
    la[0, 1, 1] = la[1, 0, 1] = la[1, 1, 1] = 255
    decoded = decode_image(encode(Image.fromarray(la, mode="LA"), "PNG"), max_pixels=LIMIT)
    assert tuple(decoded[0, 0]) == (255, 255, 255)
    assert tuple(decoded[1, 1]) == (40, 40, 40)


def test_transparent_webp_is_composited_over_white() -> None:
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., :3] = (0, 0, 200)
    rgba[:2, :, 3] = 255
    decoded = decode_image(encode(Image.fromarray(rgba, mode="RGBA"), "WEBP", lossless=True), max_pixels=LIMIT)
    assert tuple(decoded[0, 0]) == (0, 0, 200)
    assert tuple(decoded[3, 3]) == (255, 255, 255)


def test_rgba_through_http(client: TestClient) -> None:
    rgba = np.zeros((10, 14, 4), dtype=np.uint8)
    rgba[..., :3] = RGB[:10, :14]
    rgba[..., 3] = 0
    bare = {"alpha": 0.0, **as_sent(10, 14)}
    transparent = explain_image(client, encode(Image.fromarray(rgba, mode="RGBA"), "PNG"), output=bare)
    white = explain_image(client, encode(Image.new("RGB", (14, 10), (255, 255, 255)), "PNG"), output=bare)
    np.testing.assert_array_equal(decode_array(transparent["attribution"]), decode_array(white["attribution"]))
    assert (np.asarray(decode_png(transparent["overlay_png"])) == 255).all()


def test_sixteen_bit_grayscale_gradient() -> None:
    values = np.linspace(0, 65535, 18 * 26).reshape(18, 26).astype(np.uint16)
    img = Image.fromarray(values)
    data = encode(img, "PNG")
    assert Image.open(io.BytesIO(data)).mode.startswith("I")
    decoded = decode_image(data, max_pixels=LIMIT)
    assert decoded.shape == (18, 26, 3) and decoded.dtype == np.uint8
    np.testing.assert_array_equal(decoded[..., 0], decoded[..., 2])
    assert np.abs(decoded[..., 0].astype(int) - np.round(values / 257).astype(int)).max() <= 1


def test_sixteen_bit_mid_grey_stays_mid_grey() -> None:
    values = np.full((6, 8), 32768, dtype=np.uint16)
    decoded = decode_image(encode(Image.fromarray(values), "PNG"), max_pixels=LIMIT)
    assert abs(int(decoded[0, 0, 0]) - 128) <= 1


def test_sixteen_bit_through_http(client: TestClient) -> None:
    values = np.linspace(0, 65535, 18 * 26).reshape(18, 26).astype(np.uint16)
    result = explain_image(client, encode(Image.fromarray(values), "PNG"))
    assert map_shape(result) == (18, 26)


def test_cmyk_jpeg() -> None:
    img = Image.fromarray(SMOOTH).convert("CMYK")
    decoded = decode_image(encode(img, "JPEG", quality=95), max_pixels=LIMIT)
    assert decoded.shape == SMOOTH.shape
    assert np.abs(decoded.astype(int) - np.asarray(img.convert("RGB")).astype(int)).mean() < 6


# -- EXIF orientation -----------------------------------------------------------------------------

def _stored_red_top_blue_bottom(height: int = 20, width: int = 30) -> np.ndarray:
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    arr[: height // 2] = (255, 0, 0)
    arr[height // 2:] = (0, 0, 255)
    return arr


def _jpeg_with_orientation(arr: np.ndarray, orientation: int) -> bytes:
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    return encode(Image.fromarray(arr), "JPEG", quality=95, exif=exif.tobytes())


def _is_red(px: np.ndarray) -> bool:
    return px[0] > 200 and px[2] < 60


def _is_blue(px: np.ndarray) -> bool:
    return px[2] > 200 and px[0] < 60


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotation_is_applied(orientation: int) -> None:
    stored = _stored_red_top_blue_bottom()
    decoded = decode_image(_jpeg_with_orientation(stored, orientation), max_pixels=LIMIT)
    assert decoded.shape == (30, 20, 3)  # display orientation: width and height swapped
    left, right = decoded[15, 1], decoded[15, -2]
    if orientation == 6:  # rotate 90 degrees clockwise to display: the stored top goes right
        assert _is_blue(left) and _is_red(right), (left, right)
    else:  # rotate 90 degrees counter-clockwise: the stored top goes left
        assert _is_red(left) and _is_blue(right), (left, right)
    reference = np.asarray(Image.open(io.BytesIO(_jpeg_with_orientation(stored, orientation))).transpose(
        Image.Transpose.ROTATE_270 if orientation == 6 else Image.Transpose.ROTATE_90).convert("RGB"))
    np.testing.assert_array_equal(decoded, reference)


def test_exif_upside_down_keeps_the_size() -> None:
    decoded = decode_image(_jpeg_with_orientation(_stored_red_top_blue_bottom(), 3), max_pixels=LIMIT)
    assert decoded.shape == (20, 30, 3)
    assert _is_blue(decoded[1, 15]) and _is_red(decoded[-2, 15])


@pytest.mark.parametrize("orientation", [6, 8])
@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_exif_rotated_jpeg_through_http(client: TestClient, orientation: int, method: str) -> None:
    data = _jpeg_with_orientation(_stored_red_top_blue_bottom(), orientation)
    for result in (explain_image(client, data, method, output=BARE),
                   explain_upload(client, data, "photo.jpg", method, output=BARE)):
        assert result["attribution"]["shape"] == [30, 20]  # display size, not the stored 20x30
        assert map_shape(result) == (30, 20)
        assert decode_png(result["overlay_png"]).size == picture_size(30, 20)
    rotated = explain_image(client, data, method, output={"alpha": 0.0, **as_sent(30, 20)})
    overlay = np.asarray(decode_png(rotated["overlay_png"]))
    np.testing.assert_array_equal(overlay, decode_image(data, max_pixels=LIMIT))


# -- sizes ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("height,width", [(1, 1), (2, 3), (3, 2), (1, 40), (1000 // 10, 7)])
@pytest.mark.parametrize("method", ["saliency", "gradcam", "integrated_gradients"])
def test_small_and_thin_images(client: TestClient, height: int, width: int, method: str) -> None:
    arr = RNG.integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    params = {"n_steps": 8} if method == "integrated_gradients" else {}
    result = explain_image(client, encode(Image.fromarray(arr), "PNG"), method, params=params, output=BARE)
    attr = decode_array(result["attribution"])
    assert attr.shape == (height, width)
    assert np.all(np.isfinite(attr))
    assert decode_png(result["overlay_png"]).size == picture_size(height, width)


@pytest.mark.parametrize("method", ["saliency", "gradcam"])
def test_large_image(client: TestClient, method: str) -> None:
    ys, xs = np.mgrid[0:700, 0:1000]
    arr = np.dstack([(xs * 255 // 999), (ys * 255 // 699), ((xs + ys) % 256)]).astype(np.uint8)
    data = encode(Image.fromarray(arr), "PNG")
    result = explain_image(client, data, method, output=BARE)
    assert map_shape(result) == (700, 1000)
    assert decode_png(result["overlay_png"]).size == (1000, 700)  # already legible: kept as sent
    upload = explain_upload(client, data, "large.png", method)
    np.testing.assert_array_equal(decode_array(upload["attribution"]), decode_array(result["attribution"]))
    assert np.all(np.isfinite(decode_array(result["attribution"])))


def test_large_image_decodes_directly() -> None:
    arr = RNG.integers(0, 256, size=(700, 1000, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_image(encode(Image.fromarray(arr), "PNG"), max_pixels=LIMIT), arr)


def test_max_pixels_is_inclusive() -> None:
    data = encode(Image.new("RGB", (10, 10)), "PNG")
    assert decode_image(data, max_pixels=100).shape == (10, 10, 3)
    with pytest.raises(Exception) as info:
        decode_image(data, max_pixels=99)
    assert getattr(info.value, "code", None) == "image_too_large"
