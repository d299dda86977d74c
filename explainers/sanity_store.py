"""Sanity-check results kept per model and weights hash.

A bundle may ship `sanity.json` (written by `scripts/sanity_checks.py`) with the verdicts for its own
weights; the results of `POST /models/{id}/sanity` jobs go to `<state>/sanity/<model id>-<weights hash>.json`,
keyed by the check's settings, so that the same check on the same weights is answered from the file.
A file whose weights hash is not the model's is ignored: new weights need new checks.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)
BUNDLE_FILE = "sanity.json"
_LOCK = threading.Lock()


def _read(path: Path, weights_hash: str) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("sanity results %s unreadable: %s", path.name, exc)
        return None
    if not isinstance(data, dict) or data.get("weights_hash") != weights_hash:
        return None
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".sanity-", suffix=".json")
    with os.fdopen(fd, "w") as f:
        json.dump(data, f, indent=1, sort_keys=True)
    os.replace(tmp, path)


class SanityStore:
    def __init__(self, state_dir: Path | None) -> None:
        self.folder = None if state_dir is None else Path(state_dir) / "sanity"

    def path(self, model_id: str, weights_hash: str) -> Path | None:
        return None if self.folder is None else self.folder / f"{model_id}-{weights_hash[:24]}.json"

    def get(self, model_id: str, weights_hash: str, key: str) -> dict[str, Any] | None:
        path = self.path(model_id, weights_hash)
        data = None if path is None else _read(path, weights_hash)
        hit = None if data is None else data.get("results", {}).get(key)
        return hit if isinstance(hit, dict) else None

    def put(self, model_id: str, weights_hash: str, key: str, result: dict[str, Any]) -> bool:
        """Keep a method's result; False where there is no state folder."""
        path = self.path(model_id, weights_hash)
        if path is None:
            return False
        with _LOCK:
            data = _read(path, weights_hash) or {"model_id": model_id, "weights_hash": weights_hash, "results": {},
                                                 "verdicts": {}}
            data["results"][key] = result
            data["verdicts"][result["method"]] = result["verdict"]
            try:
                _write(path, data)
            except OSError as exc:
                log.warning("sanity results not stored: %s", exc)
                return False
        return True

    def verdicts(self, model_id: str, weights_hash: str, bundle: Path) -> dict[str, str]:
        """method -> verdict for these weights: the bundle's shipped ones, then the latest job's of each method."""
        out: dict[str, str] = {}
        shipped = _read(bundle / BUNDLE_FILE, weights_hash)
        if shipped is not None:
            out.update({r["method"]: r["verdict"] for r in shipped.get("methods", []) if isinstance(r, dict)})
        path = self.path(model_id, weights_hash)
        stored = None if path is None else _read(path, weights_hash)
        if stored is not None:
            out.update(stored.get("verdicts", {}))
        return out
