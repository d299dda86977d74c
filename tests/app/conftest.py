"""HTTP fixtures: the real app over the tiny bundles, a small-limits app, and request helpers."""

from __future__ import annotations

import base64
import io
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from tests.conftest import png_bytes

IMAGE_MODEL, TEXT_MODEL, TABULAR_MODEL = "tiny-image", "tiny-text", "tiny-tabular"
MODEL_FOR = {"image": IMAGE_MODEL, "text": TEXT_MODEL, "tabular": TABULAR_MODEL}
LABELS = {IMAGE_MODEL: ["red", "green", "blue"], TEXT_MODEL: ["negative", "positive"],
          TABULAR_MODEL: ["a", "b", "c"]}
FEATURES = {"f0": 0.5, "f1": -1.0, "f2": 0.25, "kind": 2}
TEXT = "The movie was not good, the plot was awful."
SMALL_BODY, SMALL_PIXELS = 200_000, 1_000_000
FAST_S = 2.0  # every bad request is answered within this


BARE = {"caption": False, "colorbar": False}  # output options: the picture alone, no legend panel


def picture_size(height: int, width: int) -> tuple[int, int]:
    """(width, height) of a picture at the default `output.size`: enlarged by a whole factor to >= 256 px."""
    factor = max(1, math.ceil(256 / max(height, width)))
    return width * factor, height * factor


def as_sent(height: int, width: int) -> dict[str, Any]:
    """Output options for the bare picture at the image's own size."""
    return {**BARE, "size": max(height, width)}


def make_client(model_dir: Path, **overrides: Any) -> TestClient:
    options: dict[str, Any] = {"preload": "startup", "device": "cpu", "log_level": "warning", **overrides}
    settings = Settings(model_dir=model_dir, **options)
    return TestClient(create_app(settings), raise_server_exceptions=False)


@pytest.fixture(scope="session")
def client(tiny_dir: Path) -> Iterator[TestClient]:
    """The real app over the three tiny bundles (models loaded at start)."""
    with make_client(tiny_dir) as c:
        yield c


@pytest.fixture(scope="session")
def small_client(tiny_dir: Path) -> Iterator[TestClient]:
    """The same bundles behind small body and image-pixel limits."""
    with make_client(tiny_dir, max_body_bytes=SMALL_BODY, max_image_pixels=SMALL_PIXELS) as c:
        yield c


@pytest.fixture(scope="session")
def image_array() -> np.ndarray:
    """A non-square RGB image, 24 high and 30 wide (the model takes 16x16)."""
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, size=(24, 30, 3), dtype=np.uint8)


@pytest.fixture(scope="session")
def image_png(image_array: np.ndarray) -> bytes:
    return png_bytes(image_array)


@pytest.fixture(scope="session")
def image_b64(image_png: bytes) -> str:
    return b64(image_png)


@pytest.fixture(scope="session")
def inputs(image_b64: str) -> dict[str, dict[str, Any]]:
    """A valid contract input per modality."""
    return {"image": {"image": image_b64}, "text": {"text": TEXT}, "tabular": {"features": dict(FEATURES)}}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def decode_png(data: str) -> Image.Image:
    raw = base64.b64decode(data, validate=True)
    assert raw.startswith(b"\x89PNG\r\n\x1a\n"), "not a PNG"
    img = Image.open(io.BytesIO(raw), formats=["PNG"])
    img.load()
    return img


def timed(send: Any, *args: Any, limit: float = FAST_S, **kwargs: Any) -> httpx.Response:
    """Send a request and check that it was answered within `limit` seconds."""
    start = time.perf_counter()
    response = send(*args, **kwargs)
    elapsed = time.perf_counter() - start
    assert elapsed < limit, f"answered in {elapsed:.2f} s (limit {limit} s)"
    return response


ANY_TEXT = type("AnyText", (), {"__eq__": lambda self, other: isinstance(other, str) and bool(other),
                                 "__repr__": lambda self: "<any text>"})()


def beat_as_a_worker(client: Any, name: str, age: float = 0.0) -> None:
    """Record a worker's heartbeat in the app's Redis exactly as `python -m workers` does (`jobqueue.heartbeat`),
    `age` seconds old; the real worker's own beat is tested in tests/workers. `client`: a TestClient or an app."""
    from jobqueue import heartbeat

    jobs = getattr(client, "app", client).state.service.job_client()
    heartbeat.beat(jobs.connection, jobs.name, name, {"host": "test", "pid": 0, "device": "cpu", "models": {},
                                                      "state": "idle", "job": None})
    if age:
        import json

        from jobqueue import keys

        key = keys.WORKERS.format(queue=jobs.name)
        state = json.loads(jobs.connection.hget(key, name))
        jobs.connection.hset(key, name, json.dumps({**state, "at": state["at"] - age}))


def forget_beats(client: TestClient) -> None:
    from jobqueue import keys

    jobs = client.app.state.service.job_client()
    jobs.connection.delete(keys.WORKERS.format(queue=jobs.name))


def assert_error(response: httpx.Response, status: int, code: str | set[str]) -> dict[str, Any]:
    """The contract's error body with the expected status and code; returns the error object."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}, body
    error = body["error"]
    assert set(error) == {"code", "message", "details"}, error
    codes = {code} if isinstance(code, str) else code
    assert error["code"] in codes, error
    assert isinstance(error["message"], str) and error["message"], error
    return error
