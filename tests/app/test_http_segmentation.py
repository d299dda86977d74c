"""HTTP: a segmentation target object, and the coded 4xx of bad ones."""

from __future__ import annotations

import base64
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from tests.app.conftest import make_client

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def seg_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    root = tmp_path_factory.mktemp("seg-http")
    for name in ("shapes-seg", "shapes-cnn"):
        shutil.copytree(ROOT / "models" / name, root / name)
    with make_client(root) as client:
        yield client


IMAGE = base64.b64encode((ROOT / "examples" / "shape-2.png").read_bytes()).decode()


def _post(client: TestClient, model_id: str, target: object, method: str = "saliency", **extra: object):
    return client.post(f"/explain/{method}", json={"model_id": model_id, "input": {"image": IMAGE}, "target": target,
                                                   "output": {"overlay": False}, **extra})


def test_a_region_target_is_explained(seg_client):
    response = _post(seg_client, "shapes-seg", {"class": "circle", "box": [16, 16, 48, 48]}, method="gradcam")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["target"]["label"] == "circle" and body["details"]["explained"] == "logits"
    assert 0 <= body["target"]["score"] <= 1
    plain = _post(seg_client, "shapes-seg", None)
    assert plain.status_code == 200 and sum(p["score"] for p in plain.json()["predictions"]) <= 1 + 1e-6


@pytest.mark.parametrize("model_id,target,params,code", [
    ("shapes-seg", {"class": 1, "box": [40, 40, 400, 80]}, {}, "invalid_region"),
    ("shapes-seg", {"class": 1, "box": [10, 10, 10, 20]}, {}, "invalid_region"),
    ("shapes-seg", {"class": 1, "mask": {"size": [2, 2], "counts": [4]}}, {}, "invalid_region"),
    ("shapes-cnn", {"class": 1, "box": [0, 0, 8, 8]}, {}, "invalid_target"),
    ("shapes-seg", {"class": 99}, {}, "invalid_target"),
    ("shapes-seg", {"class": 1, "versus": 1}, {}, "invalid_target"),
    ("shapes-seg", {"class": 1, "box": [0, 0, 8, 8], "mask": "x"}, {}, "invalid_request"),
    ("shapes-seg", {"class": 1}, {"score": "probabilities"}, "invalid_params"),
])
def test_bad_segmentation_targets_are_coded_4xx(seg_client, model_id, target, params, code):
    response = _post(seg_client, model_id, target, params=params)
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["code"] == code
