"""A small typed client of the explanation service (HTTP through httpx).

    from xai_client import Client
    with Client("http://localhost:8000") as xai:
        e = xai.explain("gradcam", "shapes-cnn", image="examples/shape-0.png")
        e.overlay.save("overlay.png"); e.attribution.shape   # PIL image, numpy array
        e = xai.explain("rise", "shapes-cnn", image=..., progress=lambda job: print(job.progress))
"""

from __future__ import annotations

import base64
import io
import os
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

import httpx
import numpy as np
from PIL import Image

from xai_client.types import Explanation, Job, ModelExplanation, Prediction, XaiError

DEFAULT_URL = "http://localhost:8000"
ImageLike = str | Path | bytes | Image.Image | np.ndarray
Features = Mapping[str, float] | Sequence[float]
ProgressCallback = Callable[[Job], None]


def image_bytes(image: ImageLike) -> bytes:
    """Encoded image bytes from a path, bytes, a PIL image or a uint8 array [H, W, 3]."""
    if isinstance(image, bytes):
        return image
    if isinstance(image, (str, Path)):
        return Path(image).read_bytes()
    if isinstance(image, np.ndarray):
        image = Image.fromarray(np.ascontiguousarray(image))
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def make_input(image: ImageLike | None = None, text: str | None = None,
               features: Features | None = None) -> dict[str, Any]:
    given = [k for k, v in (("image", image), ("text", text), ("features", features)) if v is not None]
    if len(given) != 1:
        raise ValueError("give exactly one of image, text or features")
    if image is not None:
        return {"image": base64.b64encode(image_bytes(image)).decode("ascii")}
    if text is not None:
        return {"text": text}
    assert features is not None
    return {"features": dict(features) if isinstance(features, Mapping) else [float(v) for v in features]}


class Client:
    """The service at `base_url` (default: `$XAI_URL`, else http://localhost:8000), with `api_key` (default:
    `$XAI_API_KEY`) sent as a Bearer token when the service has keys on."""

    def __init__(self, base_url: str | None = None, *, api_key: str | None = None, timeout: float = 120.0,
                 poll_interval: float = 0.25, transport: httpx.BaseTransport | None = None) -> None:
        self.base_url = (base_url or os.environ.get("XAI_URL") or DEFAULT_URL).rstrip("/")
        self.poll_interval = poll_interval
        key = api_key or os.environ.get("XAI_API_KEY")
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport, headers=headers)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # -- plumbing ---------------------------------------------------------------------------------
    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise XaiError(0, "unreachable", f"no answer from {self.base_url}: {exc}") from None
        if response.status_code >= 400:
            try:
                error = response.json()["error"]
                raise XaiError(response.status_code, error["code"], error["message"], error.get("details"))
            except (ValueError, KeyError, TypeError):
                raise XaiError(response.status_code, "http_error", response.text[:300]) from None
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        return self._request(method, path, **kwargs).json()

    # -- discovery --------------------------------------------------------------------------------
    def models(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/models")["models"])

    def model(self, model_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/models/{model_id}"))

    def methods(self) -> list[dict[str, Any]]:
        return list(self._json("GET", "/methods")["methods"])

    def sample(self, model_id: str, index: int = 0) -> dict[str, float]:
        """A row of a tabular model's background sample: features by name."""
        return dict(self._json("GET", f"/models/{model_id}/sample", params={"index": index})["input"]["features"])

    # -- predictions and explanations -------------------------------------------------------------
    def predict(self, model_id: str, *, image: ImageLike | None = None, text: str | None = None,
                features: Features | None = None, top_k: int = 5) -> list[Prediction]:
        body = {"input": make_input(image, text, features), "top_k": top_k}
        data = self._json("POST", f"/models/{model_id}/predict", json=body)
        return [Prediction.from_json(p) for p in data["predictions"]]

    def submit(self, method: str, model_id: str, *, image: ImageLike | None = None, text: str | None = None,
               features: Features | None = None, target: int | str | None = None,
               params: Mapping[str, Any] | None = None, output: Mapping[str, Any] | None = None,
               top_k: int = 5) -> Explanation | Job:
        """Send one request: a sync method's Explanation, or an async method's queued Job."""
        body = {"model_id": model_id, "input": make_input(image, text, features), "target": target,
                "params": dict(params or {}), "output": dict(output or {}), "top_k": top_k}
        response = self._request("POST", f"/explain/{method}", json=body)
        data = response.json()
        if response.status_code == 202:
            return Job.from_json({"progress": 0.0, "method": method, "model_id": model_id, **data})
        return Explanation.from_json(data)

    def explain(self, method: str, model_id: str, *, image: ImageLike | None = None, text: str | None = None,
                features: Features | None = None, target: int | str | None = None,
                params: Mapping[str, Any] | None = None, output: Mapping[str, Any] | None = None, top_k: int = 5,
                progress: ProgressCallback | None = None, timeout: float | None = None) -> Explanation:
        """Explain one input; for an async method, wait for its job (calling `progress` as it runs)."""
        answer = self.submit(method, model_id, image=image, text=text, features=features, target=target,
                             params=params, output=output, top_k=top_k)
        if isinstance(answer, Explanation):
            return answer
        return self.wait(answer.job_id, progress=progress, timeout=timeout)

    # -- jobs -------------------------------------------------------------------------------------
    def jobs(self, limit: int = 50, status: str | None = None, offset: int = 0) -> list[Job]:
        """The caller's jobs, newest first (`status`: only those in it)."""
        params: dict[str, Any] = {"limit": limit, "offset": offset}
        if status is not None:
            params["status"] = status
        return [Job.from_json(j) for j in self._json("GET", "/jobs", params=params)["jobs"]]

    def job(self, job_id: str) -> Job:
        return Job.from_json(self._json("GET", f"/jobs/{job_id}"))

    def cancel(self, job_id: str) -> Job:
        return Job.from_json(self._json("DELETE", f"/jobs/{job_id}"))

    def explain_model(self, method: str, model_id: str, *, inputs: Sequence[Mapping[str, Any]] | None = None,
                      image: ImageLike | None = None, text: str | None = None, features: Features | None = None,
                      target: int | str | None = None, params: Mapping[str, Any] | None = None,
                      progress: ProgressCallback | None = None, timeout: float | None = None) -> ModelExplanation:
        """Explain a model with a global method (always a job, waited for): `inputs` a sample set (contract
        inputs; default the bundle's own), `image` / `text` / `features` the one input of methods that take one."""
        body: dict[str, Any] = {"params": dict(params or {}), "target": target}
        if inputs is not None:
            body["inputs"] = [dict(i) for i in inputs]
        if image is not None or text is not None or features is not None:
            body["input"] = make_input(image, text, features)
        data = self._json("POST", f"/models/{model_id}/global/{method}", json=body)
        job_id = data["job_id"]
        return ModelExplanation.from_json(self._result(job_id, progress, timeout), job_id=job_id)

    def wait(self, job_id: str, *, progress: ProgressCallback | None = None,
             timeout: float | None = None) -> Explanation:
        """Poll a job until it ends; its Explanation, or an XaiError if it failed or was canceled."""
        return Explanation.from_json(self._result(job_id, progress, timeout), job_id=job_id)

    def _result(self, job_id: str, progress: ProgressCallback | None, timeout: float | None) -> dict[str, Any]:
        """Poll a job until it ends; its result, or an XaiError if it failed or was canceled."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            job = self.job(job_id)
            if progress is not None:
                progress(job)
            if job.status == "finished" and job.result is not None:
                return job.result
            if job.done:
                error = job.error or {"code": job.status, "message": f"the job ended {job.status}"}
                raise XaiError(200, error["code"], error["message"], error.get("details"))
            if deadline is not None and time.monotonic() > deadline:
                raise XaiError(0, "timeout", f"job {job_id} is still {job.status} after {timeout} s")
            time.sleep(self.poll_interval)

    def attribution_npy(self, job_id: str) -> np.ndarray:
        """A finished job's attribution, from its `.npy` file."""
        return np.asarray(np.load(io.BytesIO(self._request("GET", f"/jobs/{job_id}/attribution.npy").content),
                                  allow_pickle=False))
