"""Peak memory of the API and of a worker for a 6000x6000 image and for the largest allowed batch.

    python bench/memory.py

Starts `python -m app` (embedded Redis, one supervised worker) over the shipped demo models, then
sends: a sync Grad-CAM of a 6000x6000 photo-like image (the API's peak), a RISE job on it (the
worker's peak), and an integrated-gradients request at the largest batch_size (512) on that image.
Prints each process's peak RSS (VmHWM) and RSS after each step, measured in this one run, and the
response sizes (maps and pictures are computed at XAI_MAX_MAP_SIDE, default 1024 px).
"""

from __future__ import annotations

import base64
import io
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import free_port  # noqa: E402


def status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        path = task / "children"
        if path.exists():
            out += [int(c) for c in path.read_text().split()]
    return out


def worker_pid(api_pid: int) -> int:
    for pid in children(api_pid):
        if b"workers" in Path(f"/proc/{pid}/cmdline").read_bytes():
            return pid
    raise RuntimeError("no worker process")


def big_image(side: int = 6000) -> bytes:
    rng = np.random.default_rng(0)
    small = rng.integers(0, 256, size=(60, 60, 3), dtype=np.uint8)  # smooth, photo-like content compresses
    img = Image.fromarray(small).resize((side, side), Image.Resampling.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=85)
    return buf.getvalue()


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def main() -> None:
    port = free_port()
    state = Path(tempfile.mkdtemp(prefix="bench-mem-"))
    env = {**os.environ, "XAI_STATE_DIR": str(state), "XAI_EMBEDDED_WORKERS": "1", "XAI_PRELOAD": "startup",
           "XAI_LOG_LEVEL": "warning", "XAI_DEVICE": "cpu", "PYTHONPATH": str(ROOT),
           "MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "100000000000"}
    env.pop("XAI_REDIS_URL", None)
    api = subprocess.Popen([sys.executable, "-m", "app", "--port", str(port)], cwd=ROOT, env=env,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=url, timeout=900) as client:
            deadline = time.monotonic() + 300
            while True:
                try:
                    if client.get("/readyz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                if time.monotonic() > deadline:
                    raise RuntimeError("the service did not become ready")
                time.sleep(0.5)
            worker = worker_pid(api.pid)
            image = big_image()
            body = {"model_id": "shapes-cnn", "input": {"image": base64.b64encode(image).decode()}}
            print(f"input: 6000x6000 JPEG, {len(image) / 2**20:.1f} MB; API and worker at start: "
                  f"{mb(status_kb(api.pid, 'VmRSS'))} / {mb(status_kb(worker, 'VmRSS'))}")
            print(f"{'step':<44} {'response':>10} {'API peak':>9} {'API now':>8} {'worker peak':>12} "
                  f"{'worker now':>11}")
            steps = [("sync gradcam, 6000x6000", "/explain/gradcam", {}),
                     ("RISE job (?wait), 6000x6000", "/explain/rise?wait=600", {"n_masks": 1000, "batch_size": 256}),
                     ("integrated_gradients batch_size=512", "/explain/integrated_gradients",
                      {"n_steps": 512, "batch_size": 512})]
            for name, path, params in steps:
                response = client.post(path, json={**body, "params": params})
                response.raise_for_status()
                time.sleep(1.0)
                print(f"{name:<44} {len(response.content) / 2**20:>8.2f}MB {mb(status_kb(api.pid, 'VmHWM')):>9} "
                      f"{mb(status_kb(api.pid, 'VmRSS')):>8} {mb(status_kb(worker, 'VmHWM')):>12} "
                      f"{mb(status_kb(worker, 'VmRSS')):>11}")
                details = response.json()["details"]
                print(f"  map {details.get('map_size')} (scale {details.get('scale')}), "
                      f"batch {details.get('batch_size', 'as asked')}")
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(timeout=60)


if __name__ == "__main__":
    main()
