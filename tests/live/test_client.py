"""The Python client against the live service: numpy arrays, PIL images, jobs with progress."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from explainers.methods import all_methods
from tests.live.conftest import EXAMPLES, LiveServer
from xai_client import Client, Explanation, Job, XaiError

SHIPPED = {p.name for p in (Path(__file__).resolve().parents[2] / "models").iterdir() if (p / "model.json").is_file()}


@pytest.fixture(scope="module")
def xai(live: LiveServer) -> Client:
    with Client(live.url, poll_interval=0.1) as client:
        yield client


def test_discovery_reads_the_registries(xai: Client) -> None:
    assert {m["id"] for m in xai.models()} == SHIPPED
    assert {m["name"] for m in xai.methods()} == set(all_methods())
    assert xai.model("shapes-cnn")["modality"] == "image"
    sample = xai.sample("breast-cancer-mlp", index=3)
    assert len(sample) == 30 and all(isinstance(v, float) for v in sample.values())


@pytest.mark.parametrize("source", ["path", "bytes", "pil", "array"])
def test_explain_an_image_gives_numpy_and_pil(xai: Client, source: str) -> None:
    path = EXAMPLES / "shape-0.png"
    image = {"path": path, "bytes": path.read_bytes(), "pil": Image.open(path),
             "array": np.asarray(Image.open(path).convert("RGB"))}[source]
    e = xai.explain("gradcam", "shapes-cnn", image=image)
    assert isinstance(e, Explanation) and e.target.label == "circle" and e.target.score > 0.9
    assert isinstance(e.attribution, np.ndarray) and e.attribution.shape == (64, 64)
    assert e.attribution.dtype == np.float32 and np.isfinite(e.attribution).all()
    assert isinstance(e.overlay, Image.Image) and e.overlay.width == 256 and e.overlay.height > 256


def test_async_method_waits_with_progress(xai: Client, tmp_path) -> None:
    seen: list[Job] = []
    e = xai.explain("rise", "shapes-cnn", image=EXAMPLES / "shape-2.png", params={"n_masks": 400, "seed": 3},
                    output={"style": "contour", "size": 320}, progress=seen.append, timeout=120)
    assert seen and seen[-1].status == "finished" and seen[-1].progress == 1.0
    progress = [j.progress for j in seen]
    assert progress == sorted(progress)
    assert e.job_id == seen[-1].job_id and e.target.label == "triangle"
    assert e.overlay is not None and e.overlay.width == 320  # output options reach the worker
    np.testing.assert_array_equal(xai.attribution_npy(e.job_id), e.attribution)
    saved = np.load(e.save_attribution(tmp_path / "a.npy"))
    np.testing.assert_array_equal(saved, e.attribution)
    assert e.job_id in {j.job_id for j in xai.jobs()}


def test_text_and_tabular(xai: Client, tmp_path) -> None:
    review = (EXAMPLES / "reviews.txt").read_text().splitlines()[3]
    e = xai.explain("integrated_gradients", "sentiment-cnn", text=review, params={"n_steps": 16})
    assert set(e.unknown_tokens) >= {"marvellous", "screen", "gorgeous"}
    assert e.html and 'data-unknown="true"' in e.html
    page = e.save_overlay(tmp_path / "text.html").read_text()
    assert page.startswith("<!doctype html>")
    row = json.loads((EXAMPLES / "breast-cancer-row.json").read_text())
    t = xai.explain("saliency", "breast-cancer-mlp", features=row)
    assert t.attribution is not None and t.attribution.shape == (30,)
    assert next(f["name"] for f in t.details["features"]) in row
    assert t.overlay is not None and t.overlay.width == 800
    predictions = xai.predict("breast-cancer-mlp", features=list(row.values()), top_k=2)
    assert [p.label for p in predictions] == [t.target.label, *(p.label for p in predictions[1:])]


def test_errors_are_typed(xai: Client) -> None:
    with pytest.raises(XaiError) as info:
        xai.explain("gradcam", "no-such-model", image=EXAMPLES / "shape-0.png")
    assert info.value.status == 404 and info.value.code == "unknown_model"
    with pytest.raises(XaiError) as info:
        xai.explain("gradcam", "shapes-cnn", image=b"not an image")
    assert info.value.status == 400 and info.value.code == "invalid_image"
    with pytest.raises(XaiError) as info:
        xai.explain("integrated_gradients", "shapes-cnn", image=EXAMPLES / "shape-0.png", params={"n_steps": 0})
    assert info.value.code == "invalid_params" and info.value.details
    with pytest.raises(ValueError):
        xai.explain("gradcam", "shapes-cnn")  # no input


def test_cancel_a_running_job(xai: Client) -> None:
    job = xai.submit("rise", "shapes-cnn", image=EXAMPLES / "shape-1.png", params={"n_masks": 20000})
    assert isinstance(job, Job) and job.status == "queued"
    with pytest.raises(XaiError) as info:
        xai.wait(job.job_id, timeout=0.5)
    assert info.value.code == "timeout"
    state = xai.cancel(job.job_id)
    assert state.status in ("canceled", "started", "queued")
    with pytest.raises(XaiError) as info:
        xai.wait(job.job_id, timeout=60)
    assert info.value.code == "canceled"
    assert xai.job(job.job_id).status == "canceled"


def test_explain_a_model_with_a_global_method(xai: Client) -> None:
    from xai_client import ModelExplanation

    rules = xai.explain_model("rule_extraction", "breast-cancer-mlp", params={"max_depth": 2})
    assert isinstance(rules, ModelExplanation) and rules.rules and rules.job_id
    assert rules.details["fidelity"] > 0.8 and rules.text and rules.text.startswith("IF ")
    assert isinstance(rules.chart, Image.Image) and rules.chart.width == 900
    inverted = xai.explain_model("feature_inversion", "shapes-cnn", image=EXAMPLES / "shape-1.png",
                                 params={"n_steps": 10})
    assert inverted.images is not None and [label for label, _, _ in inverted.images][1].startswith("input")
    assert inverted.images[0][2].size == (64, 64) and inverted.details["relative_error"] < 1.5
    with pytest.raises(XaiError) as err:
        xai.explain_model("normlime", "breast-cancer-mlp", features=[0.0] * 30)
    assert err.value.status == 422 and err.value.code == "input_not_accepted"
