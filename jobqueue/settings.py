"""The XAI_* settings the API and the workers share (one env prefix; the API's own extend them)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODEL_DIR = Path(__file__).resolve().parent.parent / "models"


class SharedSettings(BaseSettings):
    """What both processes read: the registry, the limits of a request, the queue, the cache, the logs."""

    model_config = SettingsConfigDict(env_prefix="XAI_", extra="ignore")

    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="registry folder: one bundle folder per model")
    device: str = Field("auto", description="'auto' (cuda:0 when present, else cpu), 'cpu', 'cuda:1', ...")
    torch_threads: int = Field(0, ge=0, le=256, description="torch intra-op threads; 0 keeps torch's default")
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    log_format: Literal["text", "json"] = Field("text", description="`json`: one JSON object per log line")

    max_image_pixels: int = Field(40_000_000, ge=64, le=178_000_000,
                                  description="largest decoded image, in pixels (Pillow refuses more than ~178 M)")
    max_text_chars: int = Field(100_000, ge=1, le=10_000_000)
    max_map_side: int = Field(1024, ge=64, le=8192, description="long side, px, at which maps and pictures of "
                              "larger images are computed (`details.scale` says by how much they were shrunk)")
    max_batch_elements: int = Field(1 << 24, ge=1 << 12, le=1 << 32, description="most numbers of model input in "
                                    "one forward pass (batch x input size): larger batches are split")
    max_sync_quality_evaluations: int = Field(
        10_000, ge=0, le=100_000_000, description="most model evaluations the faithfulness figures "
        "(output.quality) of a synchronous request may cost; beyond, a 422 says to send it with ?async=true")
    max_result_bytes: int = Field(32 * 2**20, ge=1 << 16, le=2**31, description="largest explanation body the "
                                  "API sends or a job stores")

    redis_url: str | None = Field(None, description="Redis for the job queue; unset: start an embedded Redis "
                                  "and one worker process")
    queue_name: str = Field("explanations", min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    state_dir: Path = Field(Path.home() / ".cache" / "xai-service",
                            description="embedded mode: where the embedded Redis keeps its socket and data; always: "
                            "where patterns computed from models are stored (share it between API and workers)")
    job_timeout: int = Field(900, ge=10, le=86400, description="seconds a job may run")
    result_ttl: int = Field(3600, ge=10, le=30 * 86400, description="seconds a finished job's result is kept")
    failure_ttl: int = Field(86400, ge=10, le=30 * 86400, description="seconds a failed job is kept")
    job_retries: int = Field(2, ge=0, le=10, description="retries of a job whose worker died (SIGTERM gives a "
                             "job back without spending one)")

    cache_async: bool = Field(True, description="keep the results of async methods in the cache")
    cache_sync: bool = Field(False, description="keep the results of sync (gradient) methods in the cache")
    cache_ttl: int = Field(3600, ge=1, le=30 * 86400, description="seconds a cached explanation is kept")
    cache_max_bytes: int = Field(256 * 2**20, ge=0, le=2**40, description="total size of the cache in Redis; "
                                 "the oldest entries go first (0: no cache)")
    cache_max_item_bytes: int = Field(8 * 2**20, ge=0, le=2**31, description="larger results are not cached")
