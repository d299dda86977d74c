"""Decoding and validating raw inputs (no torch here: the API process may call it).

Images: base64 or raw bytes of PNG, JPEG, WebP, GIF or BMP, any size up to a
pixel budget; EXIF orientation applied; grey, palette, alpha and CMYK images
become RGB (alpha composited over white). Decompression bombs are refused from
the header, before any pixel is decoded.
"""

from __future__ import annotations

import base64
import binascii
import io
import math
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from explainers.errors import InvalidImage, InvalidInput, PayloadTooLarge

Image.init()  # register every plugin so that `formats=` below knows them all
FLOAT32_MAX = float(np.finfo(np.float32).max)  # the models take float32 features
ALLOWED_FORMATS = frozenset({"PNG", "JPEG", "MPO", "WEBP", "GIF", "BMP"}) & frozenset(Image.OPEN)


def b64decode(data: str, *, what: str = "image") -> bytes:
    """Strict base64 (a `data:...;base64,` prefix is allowed)."""
    if data.startswith("data:"):
        _, _, data = data.partition(",")
    try:
        return base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidImage(f"the {what} is not valid base64") from None


def probe_image(data: bytes, *, max_pixels: int) -> tuple[int, int]:
    """(width, height) from the image's header alone, checked against the pixel limit: no pixel is decoded."""
    return _open(data, max_pixels=max_pixels, load=False).size


def _open(data: bytes, *, max_pixels: int, load: bool) -> Image.Image:
    if not data:
        raise InvalidImage("the image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)  # our own pixel limit decides
            img: Image.Image = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
            width, height = img.size
            if width < 1 or height < 1:
                raise InvalidImage("the image has no pixels")
            if width * height > max_pixels:
                raise PayloadTooLarge(
                    f"the image has {width}x{height} pixels, more than the limit of {max_pixels}",
                    code="image_too_large", details={"width": width, "height": height, "max_pixels": max_pixels})
            if load:
                img.load()
                img = ImageOps.exif_transpose(img)
    except Image.DecompressionBombError as exc:
        raise PayloadTooLarge(f"the image has too many pixels: {exc}", code="image_too_large",
                              details={"max_pixels": max_pixels}) from None
    except UnidentifiedImageError:
        raise InvalidImage("the file is not an image in a format the service reads (PNG, JPEG, WebP, GIF, BMP)",
                           details={"formats": sorted(ALLOWED_FORMATS)}) from None
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise InvalidImage(f"the image is truncated or corrupt: {exc}") from None
    return img


def decode_image(data: bytes, *, max_pixels: int) -> np.ndarray:
    """Decode image bytes to an RGB uint8 array [H, W, 3] in display orientation."""
    img = _open(data, max_pixels=max_pixels, load=True)
    try:
        return _to_rgb(img)
    except (OSError, ValueError) as exc:
        raise InvalidImage(f"the image cannot be converted to RGB: {exc}") from None


def _to_rgb(img: Image.Image) -> np.ndarray:
    if img.mode.startswith("I") or img.mode == "F":
        # 16-bit (and 32-bit integer) samples scale by their type's range, not by the image's own maximum;
        # float images are taken as [0, 1].
        arr = np.asarray(img, dtype=np.float64)
        scale = 255.0 if img.mode == "F" else (255.0 / 65535.0 if img.mode.startswith("I;16") or arr.max() > 255
                                               else 1.0)
        img = Image.fromarray(np.clip(np.rint(arr * scale), 0, 255).astype(np.uint8))
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA"):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(canvas, rgba)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def check_unicode(text: str, where: str) -> str:
    """`text` if UTF-8 can carry it; a lone surrogate (JSON's "\\ud800") is an `invalid_unicode` error."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{where} is not valid Unicode: it holds a lone surrogate at character {exc.start}",
                           code="invalid_unicode", details={"field": where, "position": exc.start}) from None
    return text


def validate_text(text: Any, *, max_chars: int) -> str:
    if not isinstance(text, str):
        raise InvalidInput("input.text must be a string")
    check_unicode(text, "input.text")
    if not text.strip():
        raise InvalidInput("input.text is empty", code="empty_text")
    if len(text) > max_chars:
        raise PayloadTooLarge(f"input.text has {len(text)} characters, more than {max_chars}")
    return text


def parse_features(raw: Any, names: Sequence[str],
                   categorical: Mapping[str, Sequence[float]]) -> np.ndarray:
    """Features given by name (object) or in model order (list) -> float64 [n_features]."""
    if isinstance(raw, Mapping):
        unknown = sorted(set(raw) - set(names))
        missing = [n for n in names if n not in raw]
        if unknown or missing:
            raise InvalidInput("input.features does not match the model's features",
                               code="invalid_features", details={"missing": missing, "unknown": unknown})
        values = [raw[n] for n in names]
    elif isinstance(raw, Sequence) and not isinstance(raw, str):
        if len(raw) != len(names):
            raise InvalidInput(f"input.features has {len(raw)} values; the model takes {len(names)}",
                               code="invalid_features", details={"expected": len(names)})
        values = list(raw)
    else:
        raise InvalidInput("input.features must be an object or a list", code="invalid_features")
    out = np.empty(len(names), dtype=np.float64)
    bad: list[str] = []
    out_of_range: list[str] = []
    for i, (name, value) in enumerate(zip(names, values)):
        number = _finite(value)
        if number is None:
            bad.append(name)
            continue
        if abs(number) > FLOAT32_MAX:
            out_of_range.append(name)
            continue
        out[i] = number
        allowed = categorical.get(name)
        if allowed is not None and number not in {float(a) for a in allowed}:
            bad.append(name)
    if bad:
        raise InvalidInput("features must be finite numbers (and allowed values for categorical features)",
                           code="invalid_features", details={"invalid": bad})
    if out_of_range:
        raise InvalidInput(f"features beyond what the model's float32 input holds (|x| <= {FLOAT32_MAX:.4g})",
                           code="invalid_features", details={"invalid": out_of_range, "max_abs": FLOAT32_MAX})
    return out


def _finite(value: Any) -> float | None:
    """The value as a finite float, or None (booleans, strings, NaN, infinities, overflowing ints)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None
