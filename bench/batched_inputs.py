"""Several inputs in one request (`inputs: [...]`) against the same inputs sent one by one.

    python bench/batched_inputs.py [--n 16] [--rounds 3]

For saliency and Grad-CAM on the shapes demo model (64x64) and a random-weight ResNet-18 (224x224), and
integrated gradients on the shapes model, the median time of N `POST /explain/{method}` requests of one
input each against one request with the N inputs (over a real loopback socket, attribution as base64, no
picture), and their ratio, measured in one run. Occlusion is an async method (a job on a worker): its row
times the service layer itself (`ExplanationService.explain` N times against `explain_inputs` once).
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.main import create_app
from app.settings import Settings
from bench.common import image_payload, interleaved, serve
from demos.torchvision_bundle import make_bundle

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"
CASES: list[tuple[str, str, dict[str, Any]]] = [
    ("shapes-cnn", "saliency", {}), ("shapes-cnn", "gradcam", {}),
    ("shapes-cnn", "integrated_gradients", {"n_steps": 32, "batch_size": 64}),
    ("resnet18", "saliency", {}), ("resnet18", "gradcam", {}),
]
OUTPUT = {"overlay": False}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=16, help="inputs")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-models-"))
    make_bundle("resnet18", root / "resnet18", size=224, num_classes=1000, seed=0)
    shutil.copytree(REPO_MODELS / "shapes-cnn", root / "shapes-cnn")
    app = create_app(Settings(model_dir=root, preload="startup", log_level="warning", embedded_workers=0,
                              state_dir=root / "state"))
    service = app.state.service
    rng = np.random.default_rng(0)

    def inputs_for(model_id: str) -> list[dict[str, str]]:
        h, w = service.registry.get(model_id).manifest.image.size
        return [image_payload(rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8))
                for _ in range(args.n)]

    print(f"device: {service.registry.device}, torch threads: {torch.get_num_threads()}, inputs: {args.n}")
    print(f"{'model':<11} {'method':<21} {'via':<8} {'one by one ms':>14} {'inputs ms':>10} {'speed-up':>9}")
    with serve(app) as url, httpx.Client(base_url=url, timeout=600) as client:
        for model_id, method, params in CASES:
            images = inputs_for(model_id)

            def one_by_one(images: list = images, method: str = method, model_id: str = model_id,
                           params: dict = params) -> None:
                for item in images:
                    client.post(f"/explain/{method}", json={"model_id": model_id, "input": item, "params": params,
                                                            "output": OUTPUT}).raise_for_status()

            def together(images: list = images, method: str = method, model_id: str = model_id,
                         params: dict = params) -> None:
                r = client.post(f"/explain/{method}", json={"model_id": model_id, "inputs": images,
                                                            "params": params, "output": OUTPUT})
                r.raise_for_status()
                assert len(r.json()["explanations"]) == len(images)

            t = interleaved({"one": one_by_one, "all": together}, rounds=args.rounds, warmup=1)
            print(f"{model_id:<11} {method:<21} {'HTTP':<8} {t['one'] * 1e3:>14.1f} {t['all'] * 1e3:>10.1f} "
                  f"{t['one'] / t['all']:>8.2f}x")
        explanations = service.explanations
        images = inputs_for("shapes-cnn")
        params = {"window": 16, "stride": 8}

        def occlusion_one() -> None:
            for item in images:
                explanations.explain("occlusion", "shapes-cnn", item, params=params)

        def occlusion_all() -> None:
            explanations.explain_inputs("occlusion", "shapes-cnn", images, params=params)

        t = interleaved({"one": occlusion_one, "all": occlusion_all}, rounds=args.rounds, warmup=1)
        print(f"{'shapes-cnn':<11} {'occlusion':<21} {'service':<8} {t['one'] * 1e3:>14.1f} {t['all'] * 1e3:>10.1f} "
              f"{t['one'] / t['all']:>8.2f}x")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
