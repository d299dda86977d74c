"""Evidence with the map over HTTP: faithfulness figures, localisation against a region, costs and bad input."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import assert_error, make_client
from tests.conftest import png_bytes

# inputs["image"] is 24 high and 30 wide (the tiny model takes 16 x 16)


def post(client: TestClient, method: str, body: dict[str, Any], **query: Any) -> Any:
    return client.post(f"/explain/{method}", json=body, params=query)


def body_for(inputs: dict, region: dict | None = None, **extra: Any) -> dict[str, Any]:
    return {"model_id": "tiny-image", "input": {**inputs["image"], **(region or {})}, **extra}


@pytest.mark.parametrize("quality", [True, ["deletion", "insertion"], {"metrics": ["morf", "lerf"], "steps": 8}])
def test_quality_adds_the_figures_and_their_evaluations(client, inputs, quality):
    r = post(client, "gradcam", body_for(inputs, output={"quality": quality}))
    assert r.status_code == 200, r.text
    details = r.json()["details"]
    figures = details["quality"]
    names = {"deletion": "deletion_auc", "insertion": "insertion_auc", "morf": "morf_aopc", "lerf": "lerf_aopc"}
    wanted = ({"deletion", "insertion", "morf", "lerf"} if quality is True else
              set(quality if isinstance(quality, list) else quality["metrics"]))
    assert set(figures["map"]) == {names[m] for m in wanted}
    assert set(figures["random"]) == {names[m] for m in wanted if m != "lerf"}
    assert all(0 <= v <= 1 for v in figures["map"].values() if v is not None) or "morf_aopc" in figures["map"]
    assert details["model_evaluations"] > 0  # gradcam itself makes none: these are the figures'


def test_a_sync_method_runs_as_a_job_on_request(client, inputs):
    job = post(client, "saliency", body_for(inputs, output={"quality": True}), **{"async": "true"})
    assert job.status_code == 202 and job.json()["status"] == "queued"  # no worker here: it waits in the queue
    state = client.get(job.headers["location"]).json()
    assert state["kind"] == "explanation" and state["method"] == "saliency" and state["eta_s"] is None


def test_costly_figures_in_a_sync_request_are_a_422_with_a_hint(tiny_dir, inputs):
    with make_client(tiny_dir, max_sync_quality_evaluations=80) as small:
        error = assert_error(post(small, "gradcam", body_for(inputs, output={"quality": True})), 422,
                             "quality_too_costly")
        assert error["details"] == {"evaluations": 85, "limit": 80, "hint": "?async=true"}  # 17 steps, 5 curves
        assert post(small, "gradcam", body_for(inputs, output={"quality": {"steps": 8}})).status_code == 200


def rle(mask: np.ndarray) -> dict[str, Any]:
    flat = mask.T.ravel().astype(int)  # column-major
    counts, current, run = [], 0, 0
    for v in flat:
        if v != current:
            counts.append(run)
            current, run = v, 0
        run += 1
    counts.append(run)
    return {"size": list(mask.shape), "counts": counts}


def test_a_region_adds_the_localisation_figures_box_png_and_rle_alike(client, inputs):
    mask = np.zeros((24, 30), dtype=bool)
    mask[4:12, 6:18] = True
    png = base64.b64encode(png_bytes(np.where(mask[..., None], 255, 0).astype(np.uint8).repeat(3, axis=2))).decode()
    seen = []
    for region in ({"box": [6, 4, 18, 12]}, {"mask": png}, {"mask": rle(mask)}):
        r = post(client, "gradcam", body_for(inputs, region=region, output={"pointing_tolerance": 0}))
        assert r.status_code == 200, r.text
        figures = r.json()["details"]["localisation"]
        assert set(figures) == {"pointing_hit", "tolerance_px", "positive_share", "energy_share", "region_share"}
        assert figures["region_share"] == pytest.approx(mask.mean()) and figures["tolerance_px"] == 0
        seen.append(figures)
    assert seen[0] == seen[1] == seen[2]


@pytest.mark.parametrize("region,code", [
    ({"box": [0, 0, 31, 10]}, "invalid_region"), ({"box": [5, 5, 5, 9]}, "invalid_region"),
    ({"mask": {"size": [24, 30], "counts": [10]}}, "invalid_region"),
    ({"mask": {"size": [24, 30], "counts": [720]}}, "invalid_region"),  # empty
    ({"box": [1, 2, 3, 4], "mask": "x"}, "invalid_request"), ({"box": [1, 2, 3]}, "invalid_request"),
    ({"box": None}, "invalid_request")])
def test_bad_regions_are_coded_4xx(client, inputs, region, code):
    r = post(client, "gradcam", body_for(inputs, region=region))
    assert_error(r, 422, code)


def test_a_region_on_a_text_model_is_refused(client, inputs):
    r = post(client, "saliency", {"model_id": "tiny-text", "input": {**inputs["text"], "box": [0, 0, 1, 1]}})
    assert_error(r, 422, "invalid_region")


def test_bad_quality_options_are_invalid_requests(client, inputs):
    for quality in (["deletions"], {"steps": 1}, {"fill": "purple"}, "yes"):
        assert_error(post(client, "gradcam", body_for(inputs, output={"quality": quality})), 422, "invalid_request")
