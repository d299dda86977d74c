"""Service settings, read from XAI_* environment variables and validated at start.

The API's own settings extend the ones it shares with the workers (`jobqueue.settings`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import NoDecode

from jobqueue.settings import DEFAULT_MODEL_DIR, SharedSettings

__all__ = ["DEFAULT_EXAMPLES_DIR", "DEFAULT_MODEL_DIR", "Access", "Settings"]

DEFAULT_EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"
Access = Literal["public", "key", "admin"]


class Settings(SharedSettings):
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    examples_dir: Path = Field(DEFAULT_EXAMPLES_DIR, description="sample inputs served at /examples (the page "
                               "offers them)")
    preload: Literal["background", "startup", "lazy"] = Field(
        "background", description="load every model in a background thread at start, before serving, or on first use")
    max_body_bytes: int = Field(25 * 2**20, ge=1024, le=2**31, description="largest request body accepted")
    embedded_workers: int = Field(1, ge=0, le=16, description="embedded mode: worker processes to supervise")
    max_wait: float = Field(60.0, ge=0, le=600, description="longest ?wait= an async request may hold")
    max_waiting: int = Field(256, ge=1, le=10_000, description="most ?wait requests held at once (they hold no "
                             "thread); more answer 202 at once")

    api_keys: str | None = Field(None, description="API keys as JSON (a list of {name, sha256, scopes, ...}), "
                                 "or unset; see XAI_API_KEYS_FILE")
    api_keys_file: Path | None = Field(None, description="a JSON file of API keys (hashed); keys on when set")
    docs_access: Access = Field("key", description="with keys on: who may read /openapi.json, /docs, /redoc")
    metrics_access: Access = Field("key", description="with keys on: who may read /metrics")
    rate_limit: int = Field(600, ge=0, le=10**7, description="with keys on: requests per minute per key "
                            "(a key's own `rate_limit` overrides it; 0: no limit)")
    max_jobs: int = Field(8, ge=0, le=10_000, description="with keys on: queued or running jobs per key "
                          "(a key's own `max_jobs` overrides it; 0: no limit)")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="origins allowed to call the API from a browser (comma-separated); "
        "empty: no CORS headers")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split(cls, value: object) -> object:
        """A comma-separated env value."""
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value
