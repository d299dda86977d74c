"""The shipped sample inputs (`examples/`): a listing and the files themselves."""

from __future__ import annotations

import mimetypes
from http import HTTPStatus
from pathlib import Path
from typing import Any

from fastapi import APIRouter
from fastapi.responses import FileResponse

from app.auth import require
from app.deps import SettingsDep
from app.schemas import AUTH, ExampleList, error_responses
from explainers.errors import ServiceError

router = APIRouter(tags=["examples"])

KINDS = {".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".gif": "image", ".bmp": "image",
         ".txt": "text", ".json": "json"}


class UnknownExample(ServiceError):
    code, status = "unknown_example", HTTPStatus.NOT_FOUND


def _files(folder: Path) -> dict[str, Path]:
    if not folder.is_dir():
        return {}
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.suffix.lower() in KINDS}


def _media_type(path: Path) -> str:
    return mimetypes.guess_type(path.name)[0] or "application/octet-stream"


@router.get("/examples", operation_id="list_examples", response_model=ExampleList, responses=error_responses(*AUTH),
            dependencies=[require("explain")])
def list_examples(settings: SettingsDep) -> dict[str, Any]:
    """Images, texts (one per line) and JSON inputs shipped with the service."""
    return {"examples": [{"name": name, "kind": KINDS[path.suffix.lower()], "media_type": _media_type(path),
                          "url": f"/examples/{name}", "bytes": path.stat().st_size}
                         for name, path in _files(settings.examples_dir).items()]}


@router.get("/examples/{name}", operation_id="get_example", response_class=FileResponse,
            responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "text/plain": {}, "application/json": {}},
                             "description": "the file"}, **error_responses(*AUTH, 404)},
            dependencies=[require("explain")])
def get_example(name: str, settings: SettingsDep) -> FileResponse:
    path = _files(settings.examples_dir).get(name)  # only listed names: no path outside the folder
    if path is None:
        raise UnknownExample(f"no example {name!r}", details={"known": sorted(_files(settings.examples_dir))})
    return FileResponse(path, media_type=_media_type(path))
