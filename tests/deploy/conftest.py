"""Shared by the deployment checks: the repository root and the app's GET routes."""

from __future__ import annotations

import os
import shlex
from pathlib import Path

import pytest

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE, DOCKERFILE, DOCKERIGNORE = ROOT / "docker-compose.yml", ROOT / "Dockerfile", ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if current and line.lstrip().startswith("#"):
            continue
        current += line.rstrip()
        if current.endswith("\\"):
            current = current[:-1] + " "
            continue
        keyword, _, rest = current.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
        current = ""
    return out


def of(keyword: str) -> list[str]:
    return [rest for kw, rest in instructions() if kw == keyword]


def dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for rest in of("ENV"):
        for word in shlex.split(rest):
            key, _, value = word.partition("=")
            env[key] = value
    return env


@pytest.fixture(scope="module")
def get_routes() -> set[str]:
    """The app's GET paths, from its OpenAPI document (nothing is started or loaded)."""
    from app.main import create_app

    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("XAI_") and k != "XAI_STATE_DIR"]:
            mp.delenv(key)
        spec = create_app(Settings(preload="lazy")).openapi()
    return {path for path, ops in spec["paths"].items() if "get" in ops}
