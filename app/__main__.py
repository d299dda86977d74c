"""`python -m app [--host H] [--port P]`: run the service with uvicorn."""

from __future__ import annotations

import argparse

from app.main import create_app
from app.server import run
from app.settings import Settings


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m app", description="Run the explanation service.")
    parser.add_argument("--host", default=settings.host)
    parser.add_argument("--port", type=int, default=settings.port)
    args = parser.parse_args(argv)
    settings = settings.model_copy(update={"host": args.host, "port": args.port})
    run(create_app(settings), settings.host, settings.port, settings.log_level)


if __name__ == "__main__":
    main()
