"""Write the app's OpenAPI spec to openapi/openapi.json (`python scripts/export_openapi.py`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

SPEC_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def current_spec() -> dict:
    from app.main import create_app
    from app.settings import Settings

    return create_app(Settings(preload="lazy")).openapi()


def render(spec: dict) -> str:
    return json.dumps(spec, indent=2, sort_keys=True) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if the file differs instead of writing it")
    args = parser.parse_args()
    text = render(current_spec())
    if args.check:
        raise SystemExit(0 if SPEC_PATH.read_text() == text else 1)
    SPEC_PATH.parent.mkdir(exist_ok=True)
    SPEC_PATH.write_text(text)


if __name__ == "__main__":
    main()
