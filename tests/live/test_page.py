"""The page at `/` in headless Chromium against the live service; screenshots in $XAI_SCREENSHOTS."""

from __future__ import annotations

import io
import logging
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from tests.live.browser import severe_logs, wait_for
from tests.live.conftest import EXAMPLES, LiveServer
from tests.live.page import Page

log = logging.getLogger(__name__)


@pytest.fixture
def page(chrome: Any, live: LiveServer, screenshots: Path) -> Page:
    p = Page(chrome, live.url, screenshots)
    p.open()
    return p


def methods(live: LiveServer) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in httpx.get(f"{live.url}/methods").json()["methods"]}


def test_upload_an_image_and_see_the_gradcam_overlay(page: Page, screenshots: Path) -> None:
    page.model("shapes-cnn")
    page.method("gradcam")
    page.upload(EXAMPLES / "shape-2.png")
    page.click("#explain-btn")
    card = page.card()
    assert card.get_attribute("data-state") == "done", card.text
    picture = page.picture(card)
    assert picture.width == 384 and picture.height > 384  # the page asks for 384 px; the legend is below
    assert "triangle" in card.find_element("css selector", ".result-target").text
    assert len(card.find_elements("css selector", ".predictions li")) == 5
    assert card.find_element("css selector", '[data-timing="total"]').text.startswith("total ")
    npy = page.fetch_bytes(card.find_element("css selector", '[data-download="npy"]').get_attribute("href"))
    attribution = np.load(io.BytesIO(npy), allow_pickle=False)
    assert attribution.shape == (64, 64) and attribution.dtype == np.float32 and np.isfinite(attribution).all()
    png = page.fetch_bytes(card.find_element("css selector", '[data-download="png"]').get_attribute("href"))
    assert png.startswith(b"\x89PNG")
    assert not severe_logs(page.d)
    log.info("screenshot: %s", page.shot("page.png"))


def test_the_sanity_verdicts_show_next_to_the_method(page: Page, live: LiveServer) -> None:
    verdicts = {name: m["sanity"].get("shapes-cnn") for name, m in methods(live).items()}
    assert verdicts["gradcam"] == "passes" and verdicts["guided_backprop"] == "fails"  # the bundle's sanity.json
    page.model("shapes-cnn")
    for name in ("gradcam", "guided_backprop"):
        page.method(name)
        chip = page.css("#method-info .chip.sanity")
        assert chip.get_attribute("data-sanity") == verdicts[name], chip.text
    flagged = [b.text for b in page.all("#compare-methods label") if "fails sanity" in b.text]
    assert flagged and all(t.startswith("guided_backprop") for t in flagged)


def test_drop_an_example_and_pick_a_style(page: Page) -> None:
    page.model("shapes-cnn")
    page.method("saliency")
    page.drop(f"{page.url}/examples/shape-4.png", "shape-4.png")
    page.js("document.querySelectorAll('details').forEach((d) => d.open = true)")  # the output options
    page.select("#style-select", "mask")
    page.css("#size-input").clear()
    page.css("#size-input").send_keys("256")
    page.click("#explain-btn")
    card = page.card()
    picture = np.asarray(page.picture(card).convert("RGB"))
    assert picture.shape[1] == 256
    grey = (np.abs(picture[:256].astype(int) - picture[:256].mean(axis=2, keepdims=True)) < 3).all(axis=2)
    assert 0.6 < grey.mean() < 0.95  # the mask keeps the top 20 % of pixels in colour, greys the rest


def test_params_form_follows_the_schema(page: Page, live: LiveServer) -> None:
    page.model("shapes-cnn")
    schema = methods(live)["integrated_gradients"]["params"]["properties"]
    page.method("integrated_gradients")
    n_steps = page.css('#params-form [data-param="n_steps"] input')
    assert n_steps.get_attribute("value") == str(schema["n_steps"]["default"])
    assert n_steps.get_attribute("min") == str(schema["n_steps"]["minimum"])
    assert n_steps.get_attribute("max") == str(schema["n_steps"]["maximum"])
    options = [o.get_attribute("value") for o in page.all('#params-form [data-param="method"] option')]
    assert options == schema["method"]["enum"]
    page.upload(EXAMPLES / "shape-0.png")
    page.param("n_steps", schema["n_steps"]["maximum"] + 1)
    page.click("#explain-btn")
    error = wait_for(lambda: page.css("#error-box").is_displayed() and page.css("#error-box"), 5, "the error")
    assert "n_steps" in error.text and "Some parameters are not valid" in error.text
    assert not page.all("#single-result .result")  # nothing was sent


def test_an_async_job_shows_progress_to_the_end(page: Page) -> None:
    page.model("shapes-cnn")
    page.method("rise")
    page.param("n_masks", 4000)
    page.param("batch_size", 8)  # many small batches: a job of a few seconds that reports as it goes
    page.upload(EXAMPLES / "shape-3.png")
    page.click("#explain-btn")
    bar = wait_for(lambda: page.css("#single-result .progress"), 30, "the progress bar")
    seen: list[float] = []
    shot = None

    def finished() -> bool:
        nonlocal shot
        value = float(bar.get_attribute("aria-valuenow"))
        seen.append(value)
        if shot is None and 5 < value < 90 and "ETA" in page.css("#single-result .eta").text:
            shot = page.shot("job-in-progress.png")
        return bar.get_attribute("data-status") == "finished"

    wait_for(finished, 120, "the job to finish", interval=0.1)
    assert seen == sorted(seen) and seen[-1] == 100.0
    assert any(0 < v < 100 for v in seen), seen
    assert shot is not None, f"no ETA seen mid-way: {seen[:20]}"
    fill = page.css("#single-result .progress .fill").value_of_css_property("width")
    track = page.css("#single-result .progress").value_of_css_property("width")
    assert fill == track  # the bar is full
    card = page.card()
    assert page.picture(card).width == 384 and "cross" in card.text
    assert card.find_element("css selector", ".cancel").get_attribute("disabled") is not None


def test_cancel_a_running_job(page: Page) -> None:
    page.model("shapes-cnn")
    page.method("rise")
    page.param("n_masks", 20000)
    page.upload(EXAMPLES / "shape-1.png")
    page.click("#explain-btn")
    bar = wait_for(lambda: page.css("#single-result .progress"), 30, "the progress bar")
    wait_for(lambda: bar.get_attribute("data-status") == "started", 60, "the job to start")
    page.click("#single-result .cancel")
    wait_for(lambda: bar.get_attribute("data-status") == "canceled", 60, "the job to stop")
    error = wait_for(lambda: page.css("#single-result .error"), 30, "the job's end")
    assert error.get_attribute("data-code") == "canceled" and "canceled" in error.text.lower()


def test_compare_two_methods_side_by_side(page: Page, live: LiveServer) -> None:
    page.model("shapes-cnn")
    page.click('#example-images .example[data-name="shape-2.png"]')
    wait_for(lambda: "shape-2.png" in page.css("#image-preview").text, 10, "the example")
    names = ["gradcam", "integrated_gradients", "occlusion"]  # two instant methods and a job
    assert set(names) <= set(methods(live))
    for name in names:
        page.click(f'#compare-methods input[value="{name}"]')
    page.click("#compare-btn")
    wait_for(lambda: len([c for c in page.all("#compare-grid .result") if c.get_attribute("data-state") == "done"])
             == len(names), 90, "every method's result")
    cards = page.all("#compare-grid .result")
    assert [c.get_attribute("data-method") for c in cards] == names
    pictures = [page.picture(c) for c in cards]
    assert len({p.tobytes() for p in pictures}) == len(names)  # three different explanations
    tops = [c.location["y"] for c in cards]
    assert max(tops) - min(tops) < 5  # side by side, not stacked
    page.shot("comparison.png")


def test_a_bad_file_gives_a_readable_error(page: Page, tmp_path: Path) -> None:
    bad = tmp_path / "holiday.png"
    bad.write_bytes(b"this is not a picture at all")
    page.model("shapes-cnn")
    page.method("gradcam")
    page.upload(bad)
    page.click("#explain-btn")
    card = page.card()
    error = card.find_element("css selector", ".error")
    assert error.get_attribute("data-code") == "invalid_image"
    assert "The image could not be read" in error.text and "HTTP 400" in error.text
    assert '{"error"' not in page.css("body").text and '"code"' not in page.css("body").text
    page.shot("error.png")


def test_text_with_unknown_words(page: Page) -> None:
    page.model("sentiment-cnn")
    page.method("saliency")
    review = (EXAMPLES / "reviews.txt").read_text().splitlines()[3]
    page.select("#text-examples", "3")
    assert page.css("#text-input").get_attribute("value") == review
    page.click("#explain-btn")
    card = page.card()
    tokens = card.find_elements("css selector", ".text-html .xai-token")
    assert len(tokens) == len(review.split())
    unknown = [t.find_element("css selector", ".xai-word").text for t in tokens if t.get_attribute("data-unknown")]
    assert {"marvellous", "screen", "gorgeous"} <= set(unknown)
    assert all(t.find_element("css selector", ".xai-value").text for t in tokens)  # values shown, not hidden
    assert "outside the vocabulary" in card.find_element("css selector", ".xai-legend").text
    page.shot("text.png")


def test_features_prefilled_from_a_sample_row(page: Page, live: LiveServer) -> None:
    page.model("breast-cancer-mlp")
    sample = httpx.get(f"{live.url}/models/breast-cancer-mlp/sample").json()["input"]["features"]
    wait_for(lambda: len(page.all("#feature-form input")) == len(sample), 10, "the feature form")
    shown = {i.get_attribute("name"): float(i.get_attribute("value")) for i in page.all("#feature-form input")}
    assert shown == pytest.approx(sample)
    page.click("#sample-next")
    second = httpx.get(f"{live.url}/models/breast-cancer-mlp/sample", params={"index": 1}).json()["input"]["features"]
    wait_for(lambda: float(page.css('#feature-form input[name="mean radius"]').get_attribute("value"))
             == pytest.approx(second["mean radius"]), 10, "the next row")
    page.method("saliency")
    page.click("#explain-btn")
    card = page.card()
    chart = page.picture(card)
    assert chart.width == 800
    assert len(card.find_elements("css selector", "table.features tbody tr")) == 8


def test_lrp_with_a_rule_map_typed_as_json(page: Page) -> None:
    """A params field that is an object (lrp's rules by layer type) takes JSON; bad JSON is a readable error."""
    page.model("shapes-cnn")
    page.method("lrp")
    page.select('#params-form [data-param="composite"] select', "epsilon_gamma_box")
    page.upload(EXAMPLES / "shape-1.png")
    page.param("rules", "{first: flat")
    page.click("#explain-btn")
    error = wait_for(lambda: page.css("#error-box").is_displayed() and page.css("#error-box"), 5, "the error")
    assert "rules" in error.text and "JSON" in error.text
    page.param("rules", '{"first": "flat", "conv": "z_plus"}')
    page.click("#explain-btn")
    card = page.card()
    assert card.get_attribute("data-state") == "done", card.text
    assert "square" in card.find_element("css selector", ".result-target").text
    assert page.picture(card).width == 384
    assert not severe_logs(page.d)


def test_global_methods_explain_the_model(page: Page, live: LiveServer) -> None:
    """The model's global methods are offered apart; one runs as a job and shows its rules and chart, and one
    that takes an input sends the image shown."""
    page.model("breast-cancer-mlp")
    groups = page.js("return [...document.querySelectorAll('#method-select optgroup')].map((g) => "
                     "[g.label, [...g.querySelectorAll('option')].map((o) => o.value)])")
    listed = dict(groups)
    assert listed["The model (global, jobs)"] == ["normlime", "rule_extraction"]
    compare = {b.get_attribute("value") for b in page.all("#compare-methods input")}
    assert not compare & {"normlime", "rule_extraction"}  # comparisons are per input
    page.method("rule_extraction")
    assert "explains the model" in page.css("#method-info").text
    page.param("max_depth", 2)
    page.click("#explain-btn")
    card = page.card(timeout=120)
    assert card.get_attribute("data-state") == "done", card.text
    rules = card.find_elements("css selector", ".rules li")
    assert rules and all(r.text.startswith("IF ") for r in rules)
    assert page.picture(card).width == 900  # the rules chart
    log.info("screenshot: %s", page.shot("global-rules.png"))
    page.model("shapes-cnn")
    page.method("feature_inversion")
    page.param("n_steps", 20)
    page.upload(EXAMPLES / "shape-2.png")
    page.click("#explain-btn")
    card = page.card(timeout=120)
    assert card.get_attribute("data-state") == "done", card.text
    chart = page.picture(card)  # the grid: the inversion and the input, 64 px each enlarged to 192
    assert chart.width >= 2 * 192 and chart.height > 192
    log.info("screenshot: %s", page.shot("global-inversion.png"))
    assert not severe_logs(page.d)
