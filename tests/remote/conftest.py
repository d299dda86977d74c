"""Remote-model fixtures: a real MLServer on loopback, a misbehaving V2 server, and a registry of both.

MLServer's pins clash with ours, so it runs from its own virtual environment, built once under
`.cache/mlserver-venv` (or `$XAI_MLSERVER_VENV`) and rebuilt when the pins below change. If that
environment cannot be built (no package registry), the tests fail; they do not skip.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[2]
MLSERVER_PINS = ("mlserver==1.7.1", "mlserver-sklearn==1.7.1")
VENV = Path(os.environ.get("XAI_MLSERVER_VENV", ROOT / ".cache" / "mlserver-venv"))
START_TIMEOUT_S = 90.0

# Registry ids. Local twins come from tests/bundles.py and models/.
TAB, TAB_REMOTE = "breast-cancer-mlp", "breast-cancer-mlp-remote"
IMG, IMG_REMOTE, IMG_NHWC = "tiny-image", "tiny-image-remote", "tiny-image-nhwc"
TEXT, TEXT_REMOTE = "tiny-text", "tiny-text-remote"
TAB_MAX_BATCH, IMG_MAX_BATCH = 256, 16
DOWN_TAB, DOWN_IMG = "tabular-down", "image-down"
SLOW, FAILING, MALFORMED, NOT_JSON, MISSING = "slow", "failing", "malformed", "not-json", "missing"
QUICK = {"timeout_s": 0.3, "retries": 2, "backoff_s": 0.05}  # misbehaving servers: answer within ~1 s
SLOW_SERVER_S = 3.0


# -- MLServer's environment ---------------------------------------------------------------------
def mlserver_venv() -> Path:
    """MLServer's virtual environment, built on first use; a marker with the pins decides reuse."""
    expected = {"pins": list(MLSERVER_PINS), "python": platform.python_version()}
    marker = VENV / "xai-pins.json"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    with open(VENV.parent / f"{VENV.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test run may be building it
        if marker.is_file() and json.loads(marker.read_text()) == expected and (VENV / "bin" / "mlserver").exists():
            return VENV
        shutil.rmtree(VENV, ignore_errors=True)
        steps = [[sys.executable, "-m", "venv", str(VENV)],
                 [str(VENV / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-q",
                  *MLSERVER_PINS],
                 [str(VENV / "bin" / "python"), "-c", "import mlserver, mlserver_sklearn, sklearn, joblib"]]
        for step in steps:
            try:
                done = subprocess.run(step, capture_output=True, text=True, timeout=1800, check=False)
            except subprocess.TimeoutExpired:
                done = None
            if done is None or done.returncode != 0:
                shutil.rmtree(VENV, ignore_errors=True)
                output = "timed out" if done is None else (done.stdout + done.stderr)[-3000:]
                pytest.fail(f"could not build MLServer's environment in {VENV} ({' '.join(step[:4])} ...); is the "
                            f"package registry reachable? These tests need {', '.join(MLSERVER_PINS)}.\n{output}",
                            pytrace=False)
        marker.write_text(json.dumps(expected))
        return VENV


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_url() -> str:
    """A loopback URL nobody listens on: connections are refused."""
    return f"http://127.0.0.1:{free_port()}"


def _log_tail(path: Path, n: int = 4000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else "(no log)"


def write_image_model(repo: Path, weights: Path, name: str = IMG, version: str = "1") -> Path:
    """MLServer folder of the tiny image CNN: the numpy runtime, its weights as .npz, the settings."""
    from safetensors.numpy import load_file

    folder = repo / name
    folder.mkdir(parents=True)
    np.savez(folder / "weights.npz", **load_file(str(weights)))
    shutil.copy(Path(__file__).with_name("mlserver_runtime.py"), folder / "mlserver_runtime.py")
    (folder / "model-settings.json").write_text(json.dumps({
        "name": name, "implementation": "mlserver_runtime.TinyImageCNN",
        "inputs": [{"name": "pixels", "datatype": "FP32", "shape": [-1, 3, 16, 16]}],
        "parameters": {"uri": "./weights.npz", "version": version}}))
    return folder


class MLServer:
    """`mlserver start` over a model repository, on free loopback ports, without a metrics server."""

    def __init__(self, venv: Path, repo: Path) -> None:
        self.repo, self.http_port = repo, free_port()
        subprocess.run([str(venv / "bin" / "python"), str(ROOT / "scripts" / "mlserver_models.py"), "--out", str(repo),
                        "--server-settings", "--host", "127.0.0.1", "--http-port", str(self.http_port),
                        "--grpc-port", str(free_port()), "--metrics-port", "0"],
                       check=True, capture_output=True, text=True, timeout=300)
        self.log = repo / "mlserver.log"
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        with open(self.log, "w") as log:
            self.process = subprocess.Popen([str(venv / "bin" / "mlserver"), "start", str(repo)], cwd=repo, env=env,
                                            stdout=log, stderr=subprocess.STDOUT)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def wait_ready(self, models: list[str]) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        paths = ["/v2/health/ready", *(f"/v2/models/{m}/ready" for m in models)]
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"MLServer exited with {self.process.returncode}:\n{_log_tail(self.log)}", pytrace=False)
            try:
                if all(httpx.get(self.url + p, timeout=1.0).status_code == 200 for p in paths):
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        pytest.fail(f"MLServer was not ready within {START_TIMEOUT_S:g} s:\n{_log_tail(self.log)}", pytrace=False)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


# -- a misbehaving V2 server ----------------------------------------------------------------------
class FakeV2Server:
    """A threaded V2 server on loopback that acts by model name.

    `tiny-text-remote` and `tiny-image-nhwc` run the local torch modules (token ids; NHWC pixels);
    `slow` sleeps past any client timeout, `failing` answers 500, `malformed` a wrong shape,
    `not-json` plain text, `missing` 404. `hits` counts infer requests per model.
    """

    def __init__(self, modules: dict[str, Callable[[np.ndarray], np.ndarray]]) -> None:
        self.modules, self.hits = modules, Counter[str]()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                parts = self.path.strip("/").split("/")
                self._send(200 if len(parts) >= 3 and parts[2] != MISSING else 404, {"name": parts[-1]})

            def do_POST(self) -> None:
                name = self.path.strip("/").split("/")[2]
                owner.hits[name] += 1
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                tensor = body["inputs"][0]
                x = np.asarray(tensor["data"]).reshape(tensor["shape"])
                if name == SLOW:
                    time.sleep(SLOW_SERVER_S)
                if name == FAILING:
                    return self._send(500, {"error": "the model crashed"})
                if name == MISSING:
                    return self._send(404, {"error": f"Model {name} not found"})
                if name == NOT_JSON:
                    return self._send(200, None, raw=b"<html>not a tensor</html>")
                if name in owner.modules:
                    out = owner.modules[name](x)
                else:  # slow and malformed answer five scores for a three-label model
                    out = np.zeros((len(x), 5 if name == MALFORMED else 3))
                self._send(200, {"model_name": name, "outputs": [
                    {"name": "logits", "shape": list(out.shape), "datatype": "FP32", "data": out.ravel().tolist()}]})

            def _send(self, status: int, body: Any, raw: bytes | None = None) -> None:
                data = raw if raw is not None else json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json" if raw is None else "text/html")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
                    pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True
            block_on_close = False

            def handle_error(self, request: Any, client_address: Any) -> None:
                pass

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="fake-v2", daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# -- bundles ------------------------------------------------------------------------------------
def write_remote_bundle(dest: Path, local: Path, model_id: str, **remote: Any) -> Path:
    """The local bundle's manifest (labels, input spec) with a `remote` section instead of weights."""
    manifest = json.loads((local / "model.json").read_text())
    for key in ("architecture", "architecture_kwargs", "weights", "cam_layer", "output"):
        manifest.pop(key, None)
    if "text" in manifest:
        manifest["text"].pop("embedding_layer", None)
    manifest["id"], manifest["remote"] = model_id, remote
    folder = dest / model_id
    folder.mkdir(parents=True)
    for extra in ("background.npy", "vocab.json"):
        if (local / extra).exists():
            shutil.copy(local / extra, folder / extra)
    (folder / "model.json").write_text(json.dumps(manifest, indent=1))
    return folder


@pytest.fixture(scope="session")
def local_modules(tiny_dir: Path) -> dict[str, torch.nn.Module]:
    from explainers.models.registry import ModelRegistry

    registry = ModelRegistry(tiny_dir, device="cpu")
    return {name: registry.get(name).module for name in (IMG, TEXT)}  # type: ignore[union-attr]


@pytest.fixture(scope="session")
def fake_server(local_modules: dict[str, torch.nn.Module]) -> Iterator[FakeV2Server]:
    def run(name: str, nhwc: bool = False) -> Callable[[np.ndarray], np.ndarray]:
        def call(x: np.ndarray) -> np.ndarray:
            t = torch.from_numpy(x.transpose(0, 3, 1, 2) if nhwc else x)
            with torch.no_grad():
                return local_modules[name](t.float() if nhwc else t.long()).numpy()
        return call

    server = FakeV2Server({TEXT_REMOTE: run(TEXT), IMG_NHWC: run(IMG, nhwc=True)})
    yield server
    server.stop()


@pytest.fixture(scope="session")
def mlserver(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MLServer]:
    """A real MLServer serving the breast-cancer MLP (scikit-learn) and the tiny image CNN (numpy)."""
    venv = mlserver_venv()
    repo = tmp_path_factory.mktemp("mlserver-models")
    write_image_model(repo, tiny_dir / IMG / "weights.safetensors")
    server = MLServer(venv, repo)
    try:
        server.wait_ready([TAB, IMG])
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def remote_dir(tiny_dir: Path, mlserver: MLServer, fake_server: FakeV2Server,
               tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with local models and their remote twins, plus remote bundles on broken servers."""
    root = tmp_path_factory.mktemp("remote-registry")
    for name in (IMG, TEXT, "tiny-tabular"):
        shutil.copytree(tiny_dir / name, root / name)
    shutil.copytree(ROOT / "models" / TAB, root / TAB)
    from scripts.mlserver_models import write_remote_bundle as write_demo_bundle

    write_demo_bundle(root / TAB_REMOTE, mlserver.url, ROOT / "models" / TAB, TAB, TAB_REMOTE,
                      max_batch=TAB_MAX_BATCH)
    image = {"input_name": "pixels", "datatype": "FP32", "output": "logits"}
    write_remote_bundle(root, tiny_dir / IMG, IMG_REMOTE, url=mlserver.url, model_name=IMG, model_version="1",
                        layout="NCHW", max_batch=IMG_MAX_BATCH, **image)
    write_remote_bundle(root, tiny_dir / IMG, IMG_NHWC, url=fake_server.url, model_name=IMG_NHWC, layout="NHWC",
                        max_batch=IMG_MAX_BATCH, **image)
    write_remote_bundle(root, tiny_dir / TEXT, TEXT_REMOTE, url=fake_server.url, model_name=TEXT_REMOTE,
                        input_name="ids", datatype="INT64", layout="tokens", max_batch=8)
    tabular = {"input_name": "x", "datatype": "FP32", "layout": "features", **QUICK}
    write_remote_bundle(root, ROOT / "models" / TAB, DOWN_TAB, url=closed_url(), model_name=TAB, **tabular)
    write_remote_bundle(root, tiny_dir / IMG, DOWN_IMG, url=closed_url(), model_name=IMG, **{**image, **QUICK},
                        layout="NCHW")
    for name in (SLOW, FAILING, MALFORMED, NOT_JSON, MISSING):
        write_remote_bundle(root, tiny_dir / "tiny-tabular", name, url=fake_server.url, model_name=name, **tabular)
    return root
