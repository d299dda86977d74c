"""Rendering options through HTTP: styles, size, caption and colour bar; text honesty about unknown words."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from explainers.render.styles import STYLES
from tests.app.conftest import BARE, FEATURES, TEXT_MODEL, b64, decode_png, picture_size
from tests.conftest import png_bytes

IMAGE = np.random.default_rng(3).integers(0, 256, size=(16, 16, 3), dtype=np.uint8)


def explain(client: TestClient, method: str, model_id: str, input_: dict[str, Any], **body: Any) -> dict[str, Any]:
    response = client.post(f"/explain/{method}", json={"model_id": model_id, "input": input_, **body})
    assert response.status_code == 200, response.text[:800]
    return response.json()


def image_result(client: TestClient, **output: Any) -> dict[str, Any]:
    return explain(client, "gradcam", "tiny-image", {"image": b64(png_bytes(IMAGE))}, output=output)


def test_every_style_gives_its_own_picture(client: TestClient) -> None:
    pictures = {style: image_result(client, style=style, **BARE)["overlay_png"] for style in STYLES}
    assert len(set(pictures.values())) == len(STYLES)
    for png in pictures.values():
        assert decode_png(png).size == picture_size(16, 16) == (256, 256)


def test_size_caption_and_colour_bar(client: TestClient) -> None:
    big = decode_png(image_result(client, size=512, **BARE)["overlay_png"])
    assert big.size == (512, 512)
    full = decode_png(image_result(client, size=512)["overlay_png"])
    no_caption = decode_png(image_result(client, size=512, caption=False)["overlay_png"])
    no_bar = decode_png(image_result(client, size=512, colorbar=False)["overlay_png"])
    assert full.width == no_caption.width == no_bar.width == 512
    assert 512 < no_bar.height < full.height and 512 < no_caption.height < full.height
    np.testing.assert_array_equal(np.asarray(full)[:512], np.asarray(big))  # the legend goes under the picture


def test_caption_names_the_method_and_class(client: TestClient) -> None:
    result = explain(client, "saliency", TEXT_MODEL, {"text": "the movie was good"})
    label, score = result["target"]["label"], result["target"]["score"]
    assert f"saliency \u00b7 {label} (p = {score:.3f})" in result["details"]["html"]
    quiet = explain(client, "saliency", TEXT_MODEL, {"text": "the movie was good"}, output={"caption": False})
    assert "xai-caption" not in quiet["details"]["html"]


def test_unknown_words_are_reported_and_marked(client: TestClient) -> None:
    result = explain(client, "integrated_gradients", TEXT_MODEL, {"text": "The movie was marvellous, truly."},
                     params={"n_steps": 8})
    details = result["details"]
    assert details["tokens"] == ["the", "movie", "was", "marvellous", ",", "truly", "."]
    assert details["unknown_tokens"] == [{"index": 3, "token": "marvellous"}, {"index": 4, "token": ","},
                                         {"index": 5, "token": "truly"}]
    assert details["html"].count('data-unknown="true"') == 3
    assert "3 words</span> outside the vocabulary" in details["html"]
    page = details["html_page"]
    assert page.startswith("<!doctype html>") and details["html"] in page


def test_known_words_only(client: TestClient) -> None:
    details = explain(client, "saliency", TEXT_MODEL, {"text": "the plot was awful ."})["details"]
    assert details["unknown_tokens"] == [] and "data-unknown" not in details["html"]


@pytest.mark.parametrize("caption", [True, False])
def test_tabular_chart_height_follows_the_caption(client: TestClient, caption: bool) -> None:
    result = explain(client, "saliency", "tiny-tabular", {"features": dict(FEATURES)}, output={"caption": caption})
    png = decode_png(result["overlay_png"])
    assert png.width == 800 and png.height > 4 * 26
    other = explain(client, "saliency", "tiny-tabular", {"features": dict(FEATURES)},
                    output={"caption": not caption})
    assert (png.height > decode_png(other["overlay_png"]).height) is caption
