"""A tiny seeded training loop and the bundle writer shared by the demo models."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import nn

from explainers.models.manifest import MANIFEST_NAME, read_manifest

log = logging.getLogger(__name__)

WEIGHTS_NAME = "weights.safetensors"


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int, lr: float,
        seed: int, weight_decay: float = 1e-4, name: str = "model", lr_scale: dict[str, float] | None = None) -> None:
    """Train with AdamW and a one-cycle schedule; batches are shuffled by a seeded generator. `lr_scale`:
    a factor on the learning rate of the parameters under a module name (a pretrained part, fine-tuned)."""
    gen = torch.Generator().manual_seed(seed)
    groups: dict[float, list[nn.Parameter]] = {}
    for pname, param in model.named_parameters():
        scale = next((f for prefix, f in (lr_scale or {}).items() if pname.startswith(prefix + ".")), 1.0)
        groups.setdefault(lr * scale, []).append(param)
    opt = torch.optim.AdamW([{"params": ps, "lr": r} for r, ps in groups.items()], lr=lr, weight_decay=weight_decay)
    steps_per_epoch = (len(x) + batch_size - 1) // batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=list(groups), total_steps=epochs * steps_per_epoch,
                                                pct_start=0.2)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        start, total, correct = time.perf_counter(), 0.0, 0
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch_size):
            idx = order[i:i + batch_size]
            logits = model(x[idx])
            loss = loss_fn(logits, y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(1) == y[idx]).sum())
        log.info("%s epoch %d/%d loss %.4f train acc %.4f (%.1fs)", name, epoch + 1, epochs,
                 total / len(x), correct / len(x), time.perf_counter() - start)
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256) -> float:
    """Top-1 accuracy of `model` in eval mode."""
    model.eval()
    correct = 0
    for i in range(0, len(x), batch_size):
        correct += int((model(x[i:i + batch_size]).argmax(1) == y[i:i + batch_size]).sum())
    return correct / max(len(x), 1)


def save_bundle(folder: Path, manifest: dict[str, Any], model: nn.Module, metrics: dict[str, Any]) -> Path:
    """Write `weights.safetensors`, `model.json` and `metrics.json` into `folder` and validate the manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(folder / WEIGHTS_NAME))
    (folder / WEIGHTS_NAME).chmod(0o644)
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "weights": WEIGHTS_NAME}, indent=2) + "\n")
    (folder / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    read_manifest(folder)
    return folder
