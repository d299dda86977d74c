"""Service settings, read from XAI_* environment variables and validated at start."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"
DEFAULT_EXAMPLES_DIR = Path(__file__).resolve().parent.parent / "examples"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="XAI_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="registry folder: one bundle folder per model")
    examples_dir: Path = Field(DEFAULT_EXAMPLES_DIR, description="sample inputs served at /examples (the page "
                               "offers them)")
    device: str = Field("auto", description="'auto' (cuda:0 when present, else cpu), 'cpu', 'cuda:1', ...")
    preload: Literal["background", "startup", "lazy"] = Field(
        "background", description="load every model in a background thread at start, before serving, or on first use")
    max_body_bytes: int = Field(25 * 2**20, ge=1024, le=2**31, description="largest request body accepted")
    max_image_pixels: int = Field(40_000_000, ge=64, le=178_000_000,
                                  description="largest decoded image, in pixels (Pillow refuses more than ~178 M)")
    max_text_chars: int = Field(100_000, ge=1, le=10_000_000)
    torch_threads: int = Field(0, ge=0, le=256, description="torch intra-op threads; 0 keeps torch's default")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    redis_url: str | None = Field(None, description="Redis for the job queue; unset: start an embedded Redis "
                                  "and one worker process")
    queue_name: str = Field("explanations", min_length=1, max_length=100)
    state_dir: Path = Field(Path.home() / ".cache" / "xai-service",
                            description="embedded mode: where the embedded Redis keeps its socket and data; always: "
                            "where patterns computed from models are stored (share it between API and workers)")
    embedded_workers: int = Field(1, ge=0, le=16, description="embedded mode: worker processes to supervise")
    job_timeout: int = Field(900, ge=10, le=86400, description="seconds a job may run")
    result_ttl: int = Field(3600, ge=10, le=30 * 86400, description="seconds a finished job's result is kept")
    failure_ttl: int = Field(86400, ge=10, le=30 * 86400, description="seconds a failed job is kept")
    job_retries: int = Field(2, ge=0, le=10, description="retries of a job whose worker died or was stopped")
    max_wait: float = Field(60.0, ge=0, le=600, description="longest ?wait= an async request may hold")
