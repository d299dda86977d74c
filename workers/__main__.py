"""`python -m workers`: a worker that loads its models once and runs explanation jobs."""

from __future__ import annotations

import argparse
import logging

from rq.serializers import JSONSerializer

from app.jobs import connect
from app.settings import Settings
from workers import tasks
from workers.runtime import build_service
from workers.worker import ExplanationWorker, Reaper

log = logging.getLogger("workers")


def main(argv: list[str] | None = None) -> None:
    settings = Settings()
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--redis-url", default=settings.redis_url, help="default: XAI_REDIS_URL")
    parser.add_argument("--queue", default=settings.queue_name)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not args.redis_url:
        parser.error("no Redis: set XAI_REDIS_URL or pass --redis-url")
    service = build_service(settings)
    failed = service.registry.load_all()  # load once, before the first job
    for model_id, reason in failed.items():
        log.error("model %s failed to load: %s", model_id, reason)
    tasks.set_service(service)
    connection = connect(args.redis_url)
    from rq import Queue

    queue = Queue(args.queue, connection=connection, serializer=JSONSerializer)
    reaper = Reaper([queue])
    reaper.start()
    worker = ExplanationWorker([queue], connection=connection, serializer=JSONSerializer, name=args.name)
    log.info("worker %s on %s, device %s", worker.name, args.queue, service.registry.device)
    worker.work(burst=args.burst, logging_level=settings.log_level.upper(), with_scheduler=False)
    reaper.stopped.set()


if __name__ == "__main__":
    main()
