"""API keys: hashed entries from a setting or a file, with scopes and per-key limits.

A key is a random token (`python scripts/make_api_key.py` makes one); only its SHA-256 is kept. A
plain hash is enough for random 256-bit tokens (no dictionary to guess from), and it lets a key be
checked with one dictionary lookup. Keys are read once, at start.
"""

from __future__ import annotations

import hashlib
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

Scope = Literal["explain", "jobs", "admin"]
SCOPES: tuple[Scope, ...] = ("explain", "jobs", "admin")
DEFAULT_SCOPES: tuple[Scope, ...] = ("explain", "jobs")
ANONYMOUS = "anonymous"


class KeyEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.@\-]+$",
                      description="who the key belongs to: the owner of its jobs")
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the key, hex")
    scopes: list[Scope] = Field(default_factory=lambda: list(DEFAULT_SCOPES))
    rate_limit: int | None = Field(None, ge=0, description="requests per minute (default: XAI_RATE_LIMIT)")
    max_jobs: int | None = Field(None, ge=0, description="queued or running jobs (default: XAI_MAX_JOBS)")


_ENTRIES = TypeAdapter(list[KeyEntry])


@dataclass(frozen=True)
class Caller:
    """Who sent a request: a key's name and scopes, or the anonymous caller when keys are off."""

    name: str = ANONYMOUS
    scopes: frozenset[str] = field(default_factory=lambda: frozenset(SCOPES))
    rate_limit: int = 0
    max_jobs: int = 0
    keyed: bool = False

    @property
    def admin(self) -> bool:
        return "admin" in self.scopes

    @property
    def owner_filter(self) -> str | None:
        """The owner whose jobs this caller sees: its own; None (all) for an admin key."""
        return None if self.keyed and self.admin else self.name


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> str:
    return "xai_" + secrets.token_urlsafe(32)


class KeyRing:
    """The configured keys by hash; empty when keys are off."""

    def __init__(self, entries: list[KeyEntry], *, rate_limit: int = 0, max_jobs: int = 0) -> None:
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise ValueError("API key names must be unique: a name owns its jobs")
        self.by_hash = {e.sha256: e for e in entries}
        self.rate_limit, self.max_jobs = rate_limit, max_jobs

    @property
    def enabled(self) -> bool:
        return bool(self.by_hash)

    def caller(self, key: str) -> Caller | None:
        entry = self.by_hash.get(hash_key(key))
        if entry is None:
            return None
        return Caller(entry.name, frozenset(entry.scopes),
                      self.rate_limit if entry.rate_limit is None else entry.rate_limit,
                      self.max_jobs if entry.max_jobs is None else entry.max_jobs, keyed=True)

    @classmethod
    def load(cls, text: str | None, path: Path | None, *, rate_limit: int = 0, max_jobs: int = 0) -> KeyRing:
        """From XAI_API_KEYS (JSON) and/or XAI_API_KEYS_FILE (`{"keys": [...]}` or a list); ValueError if bad."""
        entries: list[KeyEntry] = []
        for source, raw in (("XAI_API_KEYS", text), (str(path), path.read_text() if path else None)):
            if raw is None or not raw.strip():
                continue
            try:
                data = json.loads(raw)
                entries += _ENTRIES.validate_python(data["keys"] if isinstance(data, dict) else data)
            except (ValueError, KeyError, ValidationError) as exc:
                raise ValueError(f"bad API keys in {source}: {exc}") from None
        return cls(entries, rate_limit=rate_limit, max_jobs=max_jobs)


ANONYMOUS_CALLER = Caller()
