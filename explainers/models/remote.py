"""Models on a model server speaking the Open Inference Protocol (KServe V2, REST with JSON tensors).

`RemoteModel` offers the explainers what `LocalModel` does, except the module: inputs are prepared
here (image resizing and normalisation, tokenizing, background rows), and every forward is a series
of batched `POST /v2/models/{name}/infer` calls of at most `remote.max_batch` rows. Methods that need
gradients or a layer's activations cannot run on it (`Explainer.refusal` keeps them off).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from http import HTTPStatus
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

from explainers.errors import ServiceError
from explainers.models.handle import BundleModel, ModelInput
from explainers.models.manifest import Manifest, RemoteSpec

log = logging.getLogger(__name__)

NUMPY_TYPES = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64, "INT32": np.int32}
NUMERIC_OUTPUTS = {"FP16", "FP32", "FP64", "INT8", "INT16", "INT32", "INT64", "UINT8", "UINT16", "UINT32", "UINT64"}
MAX_BACKOFF_S = 2.0
READY_TIMEOUT_S = 2.0  # a readiness probe never waits longer than this


class ModelServerUnavailable(ServiceError):
    """The model server could not be reached, timed out or answered 5xx (after the retries)."""

    code, status = "model_server_unavailable", HTTPStatus.SERVICE_UNAVAILABLE


class ModelServerError(ServiceError):
    """The model server refused the request (4xx) or answered something that is not the model's output.

    502 Bad Gateway: the upstream answered, but not usefully. Retrying cannot help (no 503 and no
    Retry-After): the bundle and the served model disagree, which an operator must fix.
    """

    code, status = "model_server_error", HTTPStatus.BAD_GATEWAY


class V2Client:
    """One model on one server: readiness, metadata and infer calls, with bounded retries.

    Counts its infer requests and the rows they carried (`infer_requests`, `infer_rows`).
    """

    def __init__(self, spec: RemoteSpec, transport: httpx.BaseTransport | None = None) -> None:
        self.spec = spec
        path = f"/v2/models/{spec.model_name}"
        if spec.model_version:
            path += f"/versions/{spec.model_version}"
        self.path = path
        self.http = httpx.Client(base_url=spec.url.rstrip("/"), timeout=httpx.Timeout(spec.timeout_s),
                                 transport=transport, headers={"Accept": "application/json"})
        self._count_lock = threading.Lock()
        self.infer_requests = 0
        self.infer_rows = 0

    @property
    def where(self) -> str:
        return f"{self.spec.url.rstrip('/')}{self.path}"

    def close(self) -> None:
        self.http.close()

    def ready(self) -> bool:
        """One readiness probe, no retries: True when the server says the model is ready."""
        try:
            timeout = min(self.spec.timeout_s, READY_TIMEOUT_S)
            return self.http.get(f"{self.path}/ready", timeout=timeout).status_code == HTTPStatus.OK
        except httpx.HTTPError:
            return False

    def metadata(self) -> dict[str, Any]:
        body = self._call("GET", self.path)
        if not isinstance(body, dict):
            raise ModelServerError(f"model server metadata from {self.where} is not a JSON object")
        return body

    def infer(self, batch: np.ndarray) -> np.ndarray:
        """Outputs [B, K] (float64) of one infer request for a batch [B, ...] of the input tensor."""
        spec = self.spec
        request: dict[str, Any] = {"inputs": [{
            "name": spec.input_name, "shape": list(batch.shape), "datatype": spec.datatype,
            "data": batch.astype(NUMPY_TYPES[spec.datatype], copy=False).ravel().tolist()}]}
        if spec.output_name:
            request["outputs"] = [{"name": spec.output_name}]
        with self._count_lock:
            self.infer_requests += 1
            self.infer_rows += len(batch)
        return self._output(self._call("POST", f"{self.path}/infer", request), len(batch))

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """One request with up to `retries` retries on timeouts, connection errors and 5xx."""
        spec, reason = self.spec, ""
        content = None if body is None else json.dumps(body, separators=(",", ":")).encode()
        headers = None if body is None else {"Content-Type": "application/json"}
        for attempt in range(spec.retries + 1):
            if attempt:
                time.sleep(min(spec.backoff_s * 2 ** (attempt - 1), MAX_BACKOFF_S))
            try:
                response = self.http.request(method, path, content=content, headers=headers)
            except httpx.TimeoutException:
                reason = f"no answer within {spec.timeout_s:g} s"
                continue
            except httpx.TransportError as exc:
                reason = f"connection failed ({type(exc).__name__}: {exc})"
                continue
            if response.status_code >= 500 and response.status_code != HTTPStatus.NOT_IMPLEMENTED:
                reason = f"HTTP {response.status_code}: {_excerpt(response)}"
                continue
            if response.status_code != HTTPStatus.OK:
                raise ModelServerError(
                    f"the model server refused {method} {self.where}: HTTP {response.status_code}: "
                    f"{_excerpt(response)}", details={"url": self.where, "status": response.status_code})
            try:
                return response.json()
            except ValueError:
                raise ModelServerError(f"the model server's answer to {method} {self.where} is not JSON",
                                       details={"url": self.where}) from None
        log.warning("model server %s unavailable after %d attempts: %s", self.where, spec.retries + 1, reason)
        raise ModelServerUnavailable(
            f"the model server for {spec.model_name!r} is unavailable: {reason} "
            f"({spec.retries + 1} attempts)", details={"url": self.where, "attempts": spec.retries + 1})

    def _output(self, body: Any, rows: int) -> np.ndarray:
        """The chosen output tensor as [rows, K]; anything else is a `ModelServerError`."""
        def bad(why: str) -> ModelServerError:
            return ModelServerError(f"malformed answer from {self.where}: {why}", details={"url": self.where})

        outputs = body.get("outputs") if isinstance(body, dict) else None
        if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) for o in outputs):
            raise bad("no 'outputs' list")
        name = self.spec.output_name
        chosen = next((o for o in outputs if o.get("name") == name), None) if name else outputs[0]
        if chosen is None:
            raise bad(f"no output named {name!r} (got {[o.get('name') for o in outputs]})")
        shape, data = chosen.get("shape"), chosen.get("data")
        if chosen.get("datatype") not in NUMERIC_OUTPUTS:
            raise bad(f"output datatype {chosen.get('datatype')!r} is not numeric")
        if not isinstance(shape, list) or not all(isinstance(d, int) and d >= 0 for d in shape):
            raise bad("output 'shape' is not a list of sizes")
        if not shape or shape[0] != rows:
            raise bad(f"output shape {shape} for a batch of {rows} rows")
        try:
            values = np.asarray(data, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise bad("output 'data' is not a flat list of numbers") from None
        if values.size != int(np.prod(shape)):
            raise bad(f"output holds {values.size} numbers for shape {shape}")
        return values.reshape(rows, -1)


def _excerpt(response: httpx.Response, limit: int = 300) -> str:
    try:
        body = response.json()
        text = body.get("error", body) if isinstance(body, dict) else body
    except ValueError:
        text = response.text
    return str(text)[:limit]


class RemoteModel(BundleModel):
    """A model on a model server, with its bundle's manifest, labels and input spec."""

    source = "remote"

    def __init__(self, manifest: Manifest, folder: Path, client: V2Client | None = None) -> None:
        assert manifest.remote is not None, "a remote model needs the manifest's remote section"
        super().__init__(manifest, folder, torch.device("cpu"))  # inputs are prepared here, run there
        self.spec = manifest.remote
        self.client = client or V2Client(self.spec)

    def run(self, batch: torch.Tensor) -> torch.Tensor:
        return self.forward(batch)

    def ready(self) -> bool:
        return self.client.ready()

    def close(self) -> None:
        self.client.close()

    # -- the model's forward: batched infer calls ---------------------------------------------
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        """Native inputs [B, ...] -> the served output [B, n_labels], `max_batch` rows per request."""
        arr = batch.detach().cpu().numpy()
        if self.spec.layout == "NHWC":
            arr = arr.transpose(0, 2, 3, 1)
        arr = np.ascontiguousarray(arr)
        step, n_labels = self.spec.max_batch, len(self.labels)
        parts = [self.client.infer(arr[a:a + step]) for a in range(0, len(arr), step)]
        out = np.concatenate(parts) if parts else np.empty((0, n_labels))
        if out.shape[1] != n_labels:
            raise ModelServerError(f"the model server returned {out.shape[1]} scores per row for {n_labels} labels",
                                   details={"url": self.client.where})
        return torch.from_numpy(out.astype(np.float32))

    # -- preparing inputs ---------------------------------------------------------------------
    def _prepare_text(self, text: str) -> ModelInput:
        """Token ids are both the input and the native input: black-box methods only delete or mask tokens."""
        tokenizer = self.tokenizer
        assert tokenizer is not None
        tokens = self.tokens(text)
        ids = torch.tensor([tokenizer.encode(tokens)])
        return ModelInput(
            x=ids, forward=self.forward, tokens=tokens, default_baseline="pad",
            baselines={"pad": lambda: torch.full_like(ids, tokenizer.pad_id),
                       "unk": lambda: torch.full_like(ids, tokenizer.unk_id)})

    # -- description --------------------------------------------------------------------------
    def input_info(self) -> dict[str, Any]:
        spec = self.spec
        return {**super().input_info(), "server": {"protocol": "v2", "model_name": spec.model_name,
                                                   "model_version": spec.model_version, "max_batch": spec.max_batch}}
