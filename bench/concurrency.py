"""Sync Grad-CAM throughput under 20 concurrent clients: keys off/on, the sync cache off/on.

    python bench/concurrency.py [--requests 200] [--clients 20]

Each configuration is a fresh app (shapes-cnn, embedded Redis, no worker) behind uvicorn on loopback;
20 client threads send `--requests` Grad-CAM requests in all, of `--inputs` different images (so that a
cache serves the repeats). Prints requests per second, median and 95th-percentile latency and errors,
measured in this one run.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import shutil
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.main import create_app  # noqa: E402
from app.settings import Settings  # noqa: E402
from bench.common import serve  # noqa: E402

KEY = "bench-key-0123456789abcdef"


def run(url: str, bodies: list[dict[str, Any]], total: int, clients: int, headers: dict[str, str]) -> dict[str, Any]:
    latencies: list[float] = []
    errors = 0
    lock = threading.Lock()
    counter = iter(range(total))

    def client() -> None:
        nonlocal errors
        with httpx.Client(base_url=url, timeout=120, headers=headers) as http:
            for i in counter:
                t0 = time.perf_counter()
                r = http.post("/explain/gradcam", json=bodies[i % len(bodies)])
                with lock:
                    latencies.append(time.perf_counter() - t0)
                    errors += r.status_code != 200

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    latencies.sort()
    return {"rps": total / wall, "p50": statistics.median(latencies) * 1e3,
            "p95": latencies[int(len(latencies) * 0.95) - 1] * 1e3, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--inputs", type=int, default=10, help="distinct images among the requests")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-conc-"))
    shutil.copytree(ROOT / "models" / "shapes-cnn", root / "models" / "shapes-cnn")
    images = [(ROOT / "examples" / f"shape-{i % 5}.png").read_bytes() for i in range(args.inputs)]
    bodies = [{"model_id": "shapes-cnn", "input": {"image": base64.b64encode(img).decode()},
               "target": i // 5} for i, img in enumerate(images)]  # 10 distinct (image, target) pairs
    keys = json.dumps([{"name": "bench", "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
                        "scopes": ["explain"], "rate_limit": 0}])
    print(f"{args.clients} clients, {args.requests} sync gradcam requests on shapes-cnn, {len(bodies)} distinct")
    print(f"{'keys':<6} {'cache':<6} {'req/s':>8} {'p50 ms':>8} {'p95 ms':>8} {'errors':>7}")
    for keyed in (False, True):
        for cached in (False, True):
            settings = Settings(model_dir=root / "models", preload="startup", log_level="warning",
                                embedded_workers=0, state_dir=root / f"state-{keyed}-{cached}", cache_sync=cached,
                                api_keys=keys if keyed else None)
            app = create_app(settings)
            headers = {"Authorization": f"Bearer {KEY}"} if keyed else {}
            with serve(app) as url:
                run(url, bodies, 20, 4, headers)  # warm up
                out = run(url, bodies, args.requests, args.clients, headers)
            print(f"{'on' if keyed else 'off':<6} {'on' if cached else 'off':<6} {out['rps']:>8.1f} "
                  f"{out['p50']:>8.1f} {out['p95']:>8.1f} {out['errors']:>7}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
