"""Shapley value sampling and extremal perturbation against their references, measured in one run.

    python bench/shapley_extremal.py [--permutations 20] [--segments 16] [--steps 100] [--arch resnet18]
                                     [--pointing 64]

Shapley value sampling: our time and model evaluations next to Captum's ShapleyValueSampling with the
same superpixels, baseline and number of orderings (ours walks them in antithetic pairs and evaluates
each distinct coalition once), and the correlation of the two maps. Extremal perturbation: our time
next to a plain torch loop of the same optimisation written out here (same smooth max-convolution,
ranking area loss, Adam and schedule), the largest difference between the two runs' masks, and the
model evaluations (forward + backward per step and area). `--pointing N`: our pointing accuracy on
the first N shipped shapes images (their object masks; 2 px tolerance). The model is the shapes demo,
or `--arch` a random-weight torchvision model at 224 px.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from explainers.masking import segment
from explainers.methods.extremal_perturbation import ExtremalPerturbation
from explainers.methods.shapley_sampling import ShapleySampling
from explainers.models.handle import LocalModel, RawInput
from explainers.models.registry import ModelRegistry
from explainers.params import parse_params

ROOT = Path(__file__).resolve().parent.parent


def load(arch: str | None) -> tuple[LocalModel, np.ndarray, int]:
    """The model, an image and its class."""
    if arch is None:
        model = ModelRegistry(ROOT / "models", device="auto").get("shapes-cnn")
        assert isinstance(model, LocalModel)
        with np.load(model.folder / "samples.npz") as data:
            image, label = data["images"][0], int(data["labels"][0])
    else:
        from skimage import data, transform

        from demos.torchvision_bundle import make_bundle

        root = Path(tempfile.mkdtemp(prefix="bench-"))
        make_bundle(arch, root / arch, size=224, num_classes=1000, seed=0)
        model = ModelRegistry(root, device="auto").get(arch)
        image = (transform.resize(data.astronaut(), (224, 224)) * 255).astype(np.uint8)
        label = -1
    assert isinstance(model, LocalModel)
    if label < 0:
        with torch.inference_mode():
            label = int(model.module(model.image_tensor(image)).argmax())
    return model, image, label


def shapley(model: LocalModel, image: np.ndarray, target: int, n: int, segments: int) -> None:
    from captum.attr import ShapleyValueSampling

    params = {"segmentation": "grid", "n_segments": segments, "fill": "zero", "n_permutations": n,
              "max_exact_features": 0, "batch_size": 64}
    p = parse_params(ShapleySampling.Params, params)
    ours = ShapleySampling().explain(model, RawInput(image=image), p, target=target)  # warm-up
    labels = torch.from_numpy(segment(image, "grid", segments)).to(model.device)
    x = model.prepare(RawInput(image=image)).x
    rows = [0]

    def forward(batch: torch.Tensor) -> torch.Tensor:
        rows[0] += batch.shape[0]
        return model.module(batch).softmax(-1)[:, target]

    mask = labels[None, None].expand_as(x).contiguous()
    t_ours = t_theirs = float("inf")
    for _ in range(2):  # alternated, best of two
        t0 = time.perf_counter()
        ours = ShapleySampling().explain(model, RawInput(image=image), p, target=target)
        t_ours = min(t_ours, time.perf_counter() - t0)
        rows[0] = 0
        with torch.random.fork_rng(), torch.inference_mode():
            torch.manual_seed(0)
            t0 = time.perf_counter()
            theirs = ShapleyValueSampling(forward).attribute(x, baselines=0.0, feature_mask=mask, n_samples=n,
                                                             perturbations_per_eval=64)
            t_theirs = min(t_theirs, time.perf_counter() - t0)
    first = np.unique(labels.cpu().numpy().ravel(), return_index=True)[1]
    corr = np.corrcoef(ours.attribution.ravel()[first], theirs[0, 0].cpu().numpy().ravel()[first])[0, 1]
    evals = ours.details["model_evaluations"]
    print(f"shapley_sampling, {ours.details['n_features']} superpixels, {n} orderings:")
    print(f"  ours   {t_ours * 1e3:8.1f} ms  {evals:6d} evaluations")
    print(f"  Captum {t_theirs * 1e3:8.1f} ms  {rows[0]:6d} evaluations")
    print(f"  time ours / Captum {t_ours / t_theirs:.2f}, evaluations ours / Captum {evals / rows[0]:.2f}, "
          f"map correlation {corr:.3f}")


def plain_extremal(model: LocalModel, x: torch.Tensor, fill: torch.Tensor, target: int, areas: list[float],
                   steps: int, step: int = 2, sigma: float = 1.5, lr: float = 0.05,
                   weight: float = 1e4) -> torch.Tensor:
    """The same optimisation as `extremal_perturbation`'s defaults, written as one plain loop."""
    h, w = x.shape[-2:]
    grid = (math.ceil(h / step), math.ceil(w / step))
    r = max(1, math.ceil(2 * sigma))
    off = torch.arange(-r, r + 1, dtype=torch.float32, device=x.device)
    kernel = torch.exp(-(off[:, None] ** 2 + off[None, :] ** 2) / (2 * sigma ** 2)).flatten()[None, :, None]
    m = torch.full((len(areas), 1, *grid), 0.5, device=x.device, requires_grad=True)
    ref = torch.stack([torch.cat([torch.zeros(h * w - round(a * h * w)), torch.ones(round(a * h * w))])
                       for a in areas]).to(x.device)
    opt = torch.optim.Adam([m], lr=lr)

    def masks() -> torch.Tensor:
        u = F.unfold(m, 2 * r + 1, padding=r) * kernel
        low = (u * torch.softmax(u / 0.05, 1)).sum(1).view(len(areas), 1, *grid)
        return F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False)

    for t in range(steps):
        mk = masks()
        score = model.module(fill + mk * (x - fill))[:, target]
        reg = ((mk.flatten(1).sort(1).values - ref) ** 2).mean(1)
        loss = (-score + weight ** (t / max(1, steps - 1)) * reg).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        with torch.no_grad():
            m.clamp_(0, 1)
    with torch.no_grad():
        return masks().mean(0)[0]


def extremal(model: LocalModel, image: np.ndarray, target: int, steps: int) -> None:
    areas = [0.05, 0.1, 0.2]
    p = parse_params(ExtremalPerturbation.Params, {"n_steps": steps, "areas": areas})
    inputs = model.prepare(RawInput(image=image))
    t_ours = t_plain = float("inf")
    for _ in range(2):  # alternated, best of two: machine noise hits both alike
        t0 = time.perf_counter()
        ours = ExtremalPerturbation().explain(model, RawInput(image=image), p, target=target)
        t_ours = min(t_ours, time.perf_counter() - t0)
        t0 = time.perf_counter()
        plain = plain_extremal(model, inputs.x, inputs.baseline("blur"), target, areas, steps)
        t_plain = min(t_plain, time.perf_counter() - t0)
    size = image.shape[:2]
    plain = F.interpolate(plain[None, None], size=size, mode="bilinear", align_corners=False)[0, 0]
    diff = float(np.abs(ours.attribution - plain.cpu().numpy()).max())
    print(f"extremal_perturbation, {len(areas)} areas, {steps} steps ({ours.details['model_evaluations']} "
          "evaluations, forward + backward, in both):")
    print(f"  ours {t_ours:.2f} s, plain torch loop {t_plain:.2f} s: ours / plain {t_ours / t_plain:.2f}; "
          f"largest mask difference {diff:.2e}")
    print("  areas reached: " + ", ".join(f"{r['area']}: {r['area_reached']:.3f}" for r in ours.details["areas"]))


def pointing(model: LocalModel, n: int, steps: int) -> None:
    with np.load(model.folder / "samples.npz") as data:
        images, labels, masks = data["images"][:n], data["labels"][:n], data["masks"][:n]
    p = parse_params(ExtremalPerturbation.Params, {"n_steps": steps})
    hits = 0
    for image, label, mask in zip(images, labels, masks):
        out = ExtremalPerturbation().explain(model, RawInput(image=image), p, target=int(label))
        y, x = np.unravel_index(np.argmax(out.attribution), out.attribution.shape)
        hits += bool(mask[max(0, y - 2):y + 3, max(0, x - 2):x + 3].any())
    print(f"extremal_perturbation pointing accuracy on {len(images)} shipped shapes images: {hits / len(images):.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--permutations", type=int, default=20)
    parser.add_argument("--segments", type=int, default=16)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--arch", default=None, help="a torchvision architecture instead of the shapes model")
    parser.add_argument("--pointing", type=int, default=0, help="shapes images for the pointing game (0: none)")
    args = parser.parse_args()
    model, image, target = load(args.arch)
    print(f"model {model.id} on {model.device}")
    shapley(model, image, target, args.permutations, args.segments)
    extremal(model, image, target, args.steps)
    if args.pointing and args.arch is None:
        pointing(model, args.pointing, 300)


if __name__ == "__main__":
    main()
