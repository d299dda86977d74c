"""The model registry: bundle folders by id, each loaded once (checked by a dry forward), on CUDA when present.

Every bundle folder is listed, the ones that failed too: a bad manifest, a module that does not build,
weights that do not fit, a dry forward whose output does not match the labels. Each has a state
(`ready`, `loading`, `not_loaded`, `error` with a reason free of absolute paths). A bundle with a
`remote` section becomes a `RemoteModel`: building it reads only the bundle folder, so the model server
need not be up when the service starts (`remote_status` asks it).
"""

from __future__ import annotations

import hashlib
import logging
import threading
from pathlib import Path
from typing import Any

import torch

from explainers.errors import ModelLoadError, UnknownModel
from explainers.models.checks import dry_forward
from explainers.models.describe import input_info, without_paths
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
        self._broken: dict[str, str] = {}  # bundle folder (or duplicate id) -> why it is not a model
        self._failed: dict[str, str] = {}  # model id -> why it did not load
        self._loading: set[str] = set()
        self._hashes: dict[str, str] = {}
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
                    broken[path.name] = self._clean(str(exc), path)
                    continue
                if manifest.id in found:
                    broken[path.name] = f"duplicate id {manifest.id!r} (also in {found[manifest.id][1].name})"
                    continue
                found[manifest.id] = (manifest, path)
        with self._lock:
            self._manifests, self._broken = found, broken

    def _clean(self, reason: str, folder: Path | None = None) -> str:
        return without_paths(reason, *(p for p in (self.folder.resolve(), self.folder, folder) if p is not None))

    def ids(self) -> list[str]:
        """The ids of bundles whose manifest reads."""
        return sorted(self._manifests)

    def names(self) -> list[str]:
        """Every bundle: the ids, and the folder names of bundles that do not read."""
        return sorted({*self._manifests, *self._broken})

    def manifest(self, model_id: str) -> Manifest:
        try:
            return self._manifests[model_id][0]
        except KeyError:
            if model_id in self._broken:
                raise ModelLoadError(f"bundle {model_id!r} is not usable: {self._broken[model_id]}") from None
            raise UnknownModel(f"unknown model {model_id!r}", details={"known": self.ids()}) from None

    def folder_of(self, model_id: str) -> Path:
        self.manifest(model_id)
        return self._manifests[model_id][1]

    def get(self, model_id: str) -> Model:
        """The loaded model; loads and checks it on first use (a remote one without calling its server)."""
        model = self._loaded.get(model_id)
        if model is not None:
            return model
        manifest = self.manifest(model_id)
        if model_id in self._failed:
            raise ModelLoadError(f"model {model_id!r} failed to load: {self._failed[model_id]}")
        with self._lock:
            if model_id not in self._loaded:
                folder = self._manifests[model_id][1]
                try:
                    self._loaded[model_id] = self._load(manifest, folder)
                except Exception as exc:  # a broken bundle must not take the service down
                    reason = self._clean(f"{type(exc).__name__}: {exc}" if not isinstance(exc, ValueError)
                                         else str(exc), folder)
                    log.error("loading model %s failed: %s", model_id, reason)
                    self._failed[model_id] = reason
                    raise ModelLoadError(f"model {model_id!r} failed to load: {reason}") from exc
                where = f"{manifest.remote.url} as {manifest.remote.model_name!r}" if manifest.remote else self.device
                log.info("loaded model %s (%s)", model_id, where)
            return self._loaded[model_id]

    def _load(self, manifest: Manifest, folder: Path) -> Model:
        if manifest.remote is not None:
            return RemoteModel(manifest, folder)
        module = load_module(manifest, folder, self.device)
        model = LocalModel(manifest, folder, module, self.device, state_dir=self.state_dir)
        dry_forward(model)
        return model

    def load_all(self, ids: list[str] | None = None) -> dict[str, str]:
        """Load the given (default: all) models; returns the ids that failed with their reasons."""
        todo = ids if ids is not None else self.ids()
        self._loading.update(todo)
        failed: dict[str, str] = {}
        for model_id in todo:
            try:
                self.get(model_id)
            except Exception as exc:
                failed[model_id] = getattr(exc, "message", str(exc))
            finally:
                self._loading.discard(model_id)
        return failed

    def mark_loading(self, ids: list[str]) -> None:
        """Show these models as `loading` until `load_all` is through with them."""
        self._loading.update(ids)

    def is_loaded(self, model_id: str) -> bool:
        return model_id in self._loaded

    @property
    def broken(self) -> dict[str, str]:
        return dict(self._broken)

    def weights_hash(self, model_id: str) -> str:
        """SHA-256 of a local bundle's weights file (of a remote bundle's manifest), without loading the model."""
        cached = self._hashes.get(model_id)
        if cached is not None:
            return cached
        manifest, folder = self.manifest(model_id), self.folder_of(model_id)
        digest = hashlib.sha256()
        if manifest.weights is None:
            digest.update(manifest.model_dump_json().encode())
        else:
            with open(folder / manifest.weights, "rb") as f:
                for block in iter(lambda: f.read(1 << 20), b""):
                    digest.update(block)
        self._hashes[model_id] = digest.hexdigest()
        return self._hashes[model_id]

    def state(self, model_id: str) -> dict[str, Any]:
        """`{"status": ready | loading | not_loaded | error, "error": reason or None}`."""
        if model_id in self._broken and model_id not in self._manifests:
            return {"status": "error", "error": self._broken[model_id]}
        if model_id in self._failed:
            return {"status": "error", "error": self._failed[model_id]}
        if model_id in self._loaded:
            return {"status": "ready", "error": None}
        return {"status": "loading" if model_id in self._loading else "not_loaded", "error": None}

    def states(self) -> dict[str, dict[str, Any]]:
        """Every bundle folder's state, the unreadable ones included."""
        return {name: self.state(name) for name in sorted({*self._manifests, *self._broken})}

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
        """ModelInfo, complete from the bundle alone (before its weights load); a broken bundle's error."""
        state = self.state(model_id)
        if model_id not in self._manifests:
            if model_id not in self._broken:
                self.manifest(model_id)  # unknown_model
            return {"id": model_id, "modality": None, "labels": [], "input": {}, "methods": [], "source": "local",
                    "device": str(self.device), "loaded": False, "description": "", **state}
        manifest, folder = self._manifests[model_id]
        remote = manifest.remote is not None
        return {
            "id": model_id, "modality": manifest.modality.value, "labels": manifest.labels,
            "input": input_info(manifest, folder), "methods": methods if state["status"] != "error" else [],
            "source": "remote" if remote else "local", "device": "remote" if remote else str(self.device),
            "loaded": model_id in self._loaded, "description": manifest.description, **state,
        }
