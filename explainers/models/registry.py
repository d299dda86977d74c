"""The model registry: bundle folders by id, each loaded once, on CUDA when present.

A bundle with a `remote` section becomes a `RemoteModel`: building it reads only the bundle
folder, so the model server need not be up when the service starts (`remote_status` asks it).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

import torch

from explainers.errors import ModelLoadError, UnknownModel
from explainers.models.handle import LocalModel
from explainers.models.loader import load_module
from explainers.models.manifest import MANIFEST_NAME, Manifest, read_manifest
from explainers.models.protocol import Model
from explainers.models.remote import RemoteModel

log = logging.getLogger(__name__)

def pick_device(name: str = "auto") -> torch.device:
    """'auto' -> cuda:0 when CUDA is present, else cpu; anything else is taken as given."""
    if name == "auto":
        return torch.device("cuda:0" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


class ModelRegistry:
    """Reads every bundle in a folder; loads a model on first use (or all at start)."""

    def __init__(self, folder: Path, device: str = "auto", state_dir: Path | None = None) -> None:
        self.folder = Path(folder)
        self.device = pick_device(device)
        self.state_dir = state_dir  # where models keep what is computed from them (patterns)
        self._manifests: dict[str, tuple[Manifest, Path]] = {}
        self._loaded: dict[str, Model] = {}
        self._broken: dict[str, str] = {}
        self._lock = threading.Lock()
        self.scan()

    def scan(self) -> None:
        """Read the manifests in the registry folder (bad bundles are logged and listed as broken)."""
        found: dict[str, tuple[Manifest, Path]] = {}
        broken: dict[str, str] = {}
        if not self.folder.is_dir():
            log.warning("model folder %s does not exist", self.folder)
        else:
            for path in sorted(self.folder.iterdir()):
                if not (path / MANIFEST_NAME).is_file():
                    continue
                try:
                    manifest = read_manifest(path)
                except ValueError as exc:
                    log.error("skipping bundle %s: %s", path.name, exc)
                    broken[path.name] = str(exc)
                    continue
                if manifest.id in found:
                    broken[manifest.id] = f"duplicate id in {path}"
                    continue
                found[manifest.id] = (manifest, path)
        with self._lock:
            self._manifests, self._broken = found, broken

    def ids(self) -> list[str]:
        return sorted(self._manifests)

    def manifest(self, model_id: str) -> Manifest:
        try:
            return self._manifests[model_id][0]
        except KeyError:
            raise UnknownModel(f"unknown model {model_id!r}", details={"known": self.ids()}) from None

    def get(self, model_id: str) -> Model:
        """The loaded model; loads it on first use (a remote one without calling its server)."""
        model = self._loaded.get(model_id)
        if model is not None:
            return model
        manifest = self.manifest(model_id)
        with self._lock:
            if model_id not in self._loaded:
                folder = self._manifests[model_id][1]
                try:
                    if manifest.remote is not None:
                        self._loaded[model_id] = RemoteModel(manifest, folder)
                    else:
                        module = load_module(manifest, folder, self.device)
                        self._loaded[model_id] = LocalModel(manifest, folder, module, self.device,
                                                            state_dir=self.state_dir)
                except Exception as exc:  # a broken bundle must not take the service down
                    log.exception("loading model %s failed", model_id)
                    raise ModelLoadError(f"model {model_id!r} could not be loaded: {exc}") from exc
                where = f"{manifest.remote.url} as {manifest.remote.model_name!r}" if manifest.remote else self.device
                log.info("loaded model %s (%s)", model_id, where)
            return self._loaded[model_id]

    def load_all(self, ids: list[str] | None = None) -> dict[str, str]:
        """Load the given (default: all) models; returns the ids that failed with their reasons."""
        failed: dict[str, str] = {}
        for model_id in ids if ids is not None else self.ids():
            try:
                self.get(model_id)
            except Exception as exc:
                failed[model_id] = str(exc)
        return failed

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    @property
    def broken(self) -> dict[str, str]:
        return dict(self._broken)

    def remote_status(self) -> dict[str, str]:
        """Remote models whose server does not say they are ready (one probe each, no retries)."""
        out: dict[str, str] = {}
        for model_id in self.ids():
            remote = self.manifest(model_id).remote
            if remote is None:
                continue
            try:
                model = self.get(model_id)
            except ModelLoadError as exc:
                out[model_id] = exc.message
                continue
            assert isinstance(model, RemoteModel)
            if not model.ready():
                out[model_id] = f"model server {remote.url} does not report {remote.model_name!r} ready"
        return out

    def info(self, model_id: str, methods: list[str]) -> dict[str, Any]:
        manifest = self.manifest(model_id)
        model = self._loaded.get(model_id)
        remote = manifest.remote is not None
        return {
            "id": model_id, "modality": manifest.modality.value, "labels": manifest.labels,
            "input": model.input_info() if model else {"kind": manifest.modality.value},
            "methods": methods, "source": "remote" if remote else "local",
            "device": "remote" if remote else str(self.device),
            "loaded": model is not None, "description": manifest.description,
        }
