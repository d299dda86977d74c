"""Perturbation methods at equal numbers of model evaluations, measured in one run.

    python bench/perturbation_throughput.py [--arch resnet18] [--evals 256] [--batch 32]

For occlusion, RISE, LIME and KernelSHAP on a random-weight torchvision model at 224x224,
prints our evaluations per second over the plain batched forward throughput (target >= 0.9)
and our time over the reference library's (Captum's Occlusion, the lime and shap packages;
target <= 0.5), in float32 and with the opt-in bfloat16 autocast, and how much bfloat16
changes the map (correlation with the float32 map). RISE has no reference library.
For the numbers the service gets, run it with the worker's allocator settings:
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=100000000000 (see ../shared/PERFORMANCE.md).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TQDM_DISABLE", "1")  # lime's progress bar

from demos.torchvision_bundle import make_bundle
from explainers.masking import segment
from explainers.methods import get_method
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params

T = TypeVar("T")

def timed(fn: Callable[[], T], repeats: int = 2) -> tuple[float, T]:
    """Best of `repeats` runs after one warm-up run (first calls pay for kernel selection)."""
    out = fn()
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--arch", default="resnet18")
    parser.add_argument("--evals", type=int, default=256, help="model evaluations per method")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    from skimage import data, transform

    root = Path(tempfile.mkdtemp(prefix="bench-"))
    make_bundle(args.arch, root / args.arch, size=args.size, num_classes=1000, seed=0)
    model = ModelRegistry(root, device="auto").get(args.arch)
    assert isinstance(model, LocalModel)
    rgb = (transform.resize(data.astronaut(), (args.size, args.size)) * 255).astype(np.uint8)
    raw = RawInput(image=rgb)
    x = model.image_tensor(rgb)
    n, batch = args.evals, args.batch
    labels = segment(rgb, "slic", 50)
    n_seg = int(labels.max()) + 1

    # The floor: a plain batched forward of a fresh NCHW module, as a user would write it.
    import torchvision

    # The references get the same: a plain NCHW copy of the weights (ours keeps channels-last weights).
    plain = torchvision.models.get_model(args.arch, weights=None, num_classes=1000).eval().requires_grad_(False)
    plain.load_state_dict(model.module.state_dict())
    plain = plain.to(model.device, memory_format=torch.contiguous_format)
    inputs = x.repeat(batch, 1, 1, 1).contiguous()
    with torch.inference_mode():
        t_plain, _ = timed(lambda: [plain(inputs) for _ in range(max(1, n // batch))])
    plain_rate = max(1, n // batch) * batch / t_plain

    def ours(method: str, precision: str, **params: object) -> tuple[float, np.ndarray, int]:
        cls = get_method(method)
        p = parse_params(cls.Params, {**params, "batch_size": batch, "precision": precision, "seed": 0})
        t, expl = timed(lambda: cls().explain(model, raw, p))
        return t, expl.attribution, int(expl.details.get("model_evaluations", 0))

    probs_fn = _probabilities(plain)
    target = int(probs_fn(x).argmax())
    side = int(round((args.size ** 2 / n) ** 0.5))
    window, stride = side * 2, side
    refs: dict[str, Callable[[], object]] = {
        "occlusion": lambda: _captum_occlusion(plain, x, target, window, stride, batch),
        "lime": lambda: _lime(rgb, plain, model.normalize, labels, target, n, batch),
        "kernel_shap": lambda: _shap(plain, model.normalize, x, labels, target, n, batch),
    }
    settings = {"occlusion": {"window": window, "stride": stride},
                "rise": {"n_masks": n},
                "lime": {"n_samples": n, "segmentation": "slic", "n_segments": 50, "fill": "zero"},
                "kernel_shap": {"n_samples": n, "segmentation": "slic", "n_segments": 50, "fill": "zero"}}
    print(f"{args.arch} {args.size}x{args.size} on {model.device}, torch threads {torch.get_num_threads()}, "
          f"batch {batch}, {n_seg} superpixels; plain batched forward: {plain_rate:.1f} inputs/s")
    print(f"{'method':<12} {'evals':>6} {'ours s':>7} {'evals/s':>8} {'/plain':>7} {'ref s':>7} {'ours/ref':>9} "
          f"{'bf16 s':>7} {'bf16/ref':>9} {'bf16 corr':>9}")
    for method, params in settings.items():
        t32, a32, evals = ours(method, "float32", **params)
        t16, a16, _ = ours(method, "bfloat16", **params)
        t_ref = timed(refs[method])[0] if method in refs else float("nan")
        corr = float(np.corrcoef(a32.ravel(), a16.ravel())[0, 1])
        rate = evals / t32
        print(f"{method:<12} {evals:>6} {t32:>7.2f} {rate:>8.1f} {rate / plain_rate:>7.2f} {t_ref:>7.2f} "
              f"{t32 / t_ref:>9.2f} {t16:>7.2f} {t16 / t_ref:>9.2f} {corr:>9.3f}")


def _probabilities(module: torch.nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    def fn(batch: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return module(batch).softmax(-1)
    return fn


def _captum_occlusion(module, x, target, window, stride, batch) -> object:
    from captum.attr import Occlusion

    forward = _probabilities(module)
    return Occlusion(lambda b: forward(b)).attribute(
        x, sliding_window_shapes=(3, window, window), strides=(3, stride, stride), baselines=0.0,
        target=target, perturbations_per_eval=batch)


def _to_batch(normalize, images: np.ndarray, device: torch.device) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32) / 255.0).permute(0, 3, 1, 2)
    return normalize(t.contiguous().to(device))


def _lime(rgb, module, normalize, labels, target, n, batch) -> object:
    from lime.lime_image import LimeImageExplainer

    forward = _probabilities(module)
    device = next(module.parameters()).device
    return LimeImageExplainer(random_state=0).explain_instance(
        rgb, lambda imgs: forward(_to_batch(normalize, imgs, device)).cpu().numpy(), labels=(target,), top_labels=None,
        hide_color=0, num_samples=n, batch_size=batch, segmentation_fn=lambda _img: labels, random_seed=0
        )


def _shap(module, normalize, x, labels, target, n, batch) -> object:
    import shap

    forward = _probabilities(module)
    seg = torch.from_numpy(labels).to(x.device)
    fill = normalize(torch.zeros_like(x))

    def f(z: np.ndarray) -> np.ndarray:
        out = []
        for chunk in np.array_split(z, max(1, int(np.ceil(len(z) / batch)))):
            keep = torch.from_numpy(chunk.astype(np.float32)).to(x.device)[:, seg][:, None]
            out.append(forward(fill + keep * (x - fill))[:, target].cpu().numpy())
        return np.concatenate(out)

    m = int(labels.max()) + 1
    explainer = shap.KernelExplainer(f, np.zeros((1, m)))
    return explainer.shap_values(np.ones((1, m)), nsamples=n, silent=True)


if __name__ == "__main__":
    main()
