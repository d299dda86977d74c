"""Patterns computed from a model and a sample set, stored in the state folder under the weights' hash."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from explainers.models.handle import LocalModel, RawInput
from explainers.models.samples import attribution_batches, bundle_samples
from explainers.propagation.errors import PatternsMissing
from explainers.propagation.graph import canonize
from explainers.propagation.patterns import KINDS, Patterns, PatternStatistics
from explainers.types import Modality

log = logging.getLogger(__name__)
FORMAT = "1"  # the layout of the canonized graph and of the file; part of the file name


def compute_patterns(model: LocalModel, samples: Sequence[RawInput], origin: str,
                     progress: Callable[[float], None] | None = None) -> Patterns:
    """Statistics of every weighted layer over the samples, turned into patterns (call under `model.lock`)."""
    text = model.modality is Modality.TEXT
    canon = canonize(model.module, model.embedding_layer if text else None)
    stats = PatternStatistics(canon)
    n = max(1, len(samples))
    stats.add(attribution_batches(model, samples), None if progress is None else (lambda done: progress(done / n)))
    return stats.patterns({"model_id": model.id, "weights_hash": model.weights_hash, "origin": origin,
                           "format": FORMAT})


class PatternStore:
    """`<state>/patterns/<model id>-<weights hash>-v<format>.safetensors`."""

    def __init__(self, state_dir: Path) -> None:
        self.folder = Path(state_dir) / "patterns"

    def path(self, model: LocalModel) -> Path:
        return self.folder / f"{model.id}-{model.weights_hash[:24]}-v{FORMAT}.safetensors"

    def load(self, model: LocalModel) -> Patterns | None:
        path = self.path(model)
        if not path.is_file():
            return None
        tensors = load_file(str(path), device=str(model.device))
        with open(path, "rb") as f:  # the header carries the metadata
            header = json.loads(f.read(int.from_bytes(f.read(8), "little")))
        meta = dict(header.get("__metadata__", {}))
        layers: dict[str, dict[str, torch.Tensor]] = {}
        for key, tensor in tensors.items():
            target, kind = key.rsplit("/", 1)
            layers.setdefault(target, {})[kind] = tensor
        return Patterns(layers, int(meta.pop("n_samples", "0")), meta)

    def save(self, model: LocalModel, patterns: Patterns) -> Path:
        """Write atomically (a reader never sees half a file)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"{target}/{kind}": t.contiguous().cpu() for target, own in patterns.layers.items()
                   for kind, t in own.items() if kind in KINDS}
        path = self.path(model)
        fd, tmp = tempfile.mkstemp(dir=self.folder, suffix=".tmp")
        os.close(fd)
        try:
            save_file(tensors, tmp, metadata={**patterns.meta, "n_samples": str(patterns.n_samples)})
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        log.info("stored patterns of %s (%d layers, %d samples) in %s", model.id, len(patterns.layers),
                 patterns.n_samples, path)
        return path


_MEMORY: weakref.WeakKeyDictionary[LocalModel, tuple[Patterns, float | None]] = weakref.WeakKeyDictionary()
_LOCK = threading.Lock()


def _mtime(path: Path | None) -> float | None:
    try:
        return path.stat().st_mtime if path is not None else None
    except OSError:
        return None


def store_patterns(model: LocalModel, patterns: Patterns) -> Path | None:
    """Keep the patterns in memory and, where the model has a state folder, on disk for other processes."""
    path = PatternStore(model.state_dir).save(model, patterns) if model.state_dir is not None else None
    with _LOCK:
        _MEMORY[model] = (patterns, _mtime(path))
    return path


def patterns_for(model: LocalModel) -> Patterns:
    """The model's patterns: in memory (unless a newer file was stored, by a job in a worker), else on disk,
    else computed from the bundle's sample set; a `patterns_missing` error when there is none."""
    store = PatternStore(model.state_dir) if model.state_dir is not None else None
    on_disk = _mtime(store.path(model)) if store is not None else None
    with _LOCK:
        known = _MEMORY.get(model)
    if known is not None and (on_disk is None or known[1] == on_disk):
        return known[0]
    patterns = store.load(model) if store is not None and on_disk is not None else None
    if patterns is not None:
        with _LOCK:
            _MEMORY[model] = (patterns, on_disk)
        return patterns
    samples = bundle_samples(model)
    if not samples:
        raise PatternsMissing(
            f"model {model.id!r} has no patterns yet, and its bundle ships no sample set to compute them from: "
            f"POST /models/{model.id}/patterns with sample inputs runs a job that computes and stores them",
            details={"model_id": model.id, "compute": f"POST /models/{model.id}/patterns",
                     "needs": "inputs: the bundle has no 'samples'"})
    patterns = compute_patterns(model, samples, origin="bundle samples")
    store_patterns(model, patterns)
    return patterns
