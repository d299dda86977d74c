"""Grad-CAM over HTTP against a bare forward+backward pass, on the same model and input.

    python bench/gradcam_roundtrip.py [--rounds 15]

Prints, for the shapes demo model (64x64) and a random-weight ResNet-50 (224x224), the
median time of a `POST /explain/gradcam` round trip (PNG in, overlay PNG and attribution
out, over a real loopback socket) and of a bare forward + backward pass to the input, and
their ratio, all measured in one run. Target: ratio <= 1.3 on ResNet-50.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

import httpx
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.main import create_app
from app.settings import Settings
from bench.common import image_payload, interleaved, serve
from demos.torchvision_bundle import make_bundle

REPO_MODELS = Path(__file__).resolve().parent.parent / "models"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))
    root = Path(tempfile.mkdtemp(prefix="bench-models-"))
    make_bundle("resnet50", root / "resnet50", size=224, num_classes=1000, seed=0)
    if (REPO_MODELS / "shapes-cnn").is_dir():
        shutil.copytree(REPO_MODELS / "shapes-cnn", root / "shapes-cnn")
    app = create_app(Settings(model_dir=root, preload="startup", log_level="warning", embedded_workers=0,
                              state_dir=root / "state"))
    service = app.state.service
    rng = np.random.default_rng(0)
    print(f"device: {service.registry.device}, torch threads: {torch.get_num_threads()}")
    print(f"{'model':<12} {'size':>9} {'fwd+bwd ms':>11} {'HTTP gradcam ms':>16} {'ratio':>6}")
    with serve(app) as url, httpx.Client(base_url=url, timeout=120) as client:
        for model_id in [m for m in ("shapes-cnn", "resnet50") if m in service.registry.ids()]:
            model = service.registry.get(model_id)
            h, w = model.manifest.image.size
            rgb = rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            body = {"model_id": model_id, "input": image_payload(rgb)}
            x = model.image_tensor(rgb)

            def bare(x: torch.Tensor = x, module: torch.nn.Module = model.module) -> None:
                xi = x.detach().requires_grad_(True)
                out = module(xi)
                out[0, int(out[0].argmax())].backward()

            def roundtrip(body: dict = body) -> None:
                r = client.post("/explain/gradcam", json=body)
                r.raise_for_status()
                assert r.json()["overlay_png"]

            t = interleaved({"bare": bare, "http": roundtrip}, rounds=args.rounds)
            print(f"{model_id:<12} {h:>4}x{w:<4} {t['bare'] * 1e3:>11.1f} {t['http'] * 1e3:>16.1f} "
                  f"{t['http'] / t['bare']:>6.2f}")
    shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
