"""`python -m workers`: a worker that loads its models once and runs explanation jobs.

It outlives Redis outages: when Redis stops answering, RQ's loop ends; this waits for Redis with
exponential backoff (up to `MAX_BACKOFF_S` between tries) and starts a new loop, never exiting.
"""

from __future__ import annotations

import argparse
import logging
import time

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from jobqueue.connection import connect
from jobqueue.logs import setup_logging
from jobqueue.reaper import Reaper
from jobqueue.settings import SharedSettings
from workers import tasks
from workers.runtime import build_service
from workers.worker import ExplanationWorker

log = logging.getLogger("workers")
MAX_BACKOFF_S = 10.0


def wait_for_redis(connection: redis.Redis, stop: object) -> None:
    delay, since = 0.5, time.monotonic()
    while not tasks.shutdown.is_set():
        try:
            connection.ping()
            log.info("Redis answers again after %.0f s", time.monotonic() - since)
            return
        except redis.RedisError as exc:
            log.warning("Redis does not answer (%s); next try in %.1f s", exc, delay)
        time.sleep(delay)
        delay = min(MAX_BACKOFF_S, delay * 2)


def main(argv: list[str] | None = None) -> None:
    settings = SharedSettings()
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument("--redis-url", default=settings.redis_url, help="default: XAI_REDIS_URL")
    parser.add_argument("--queue", default=settings.queue_name)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", default=None)
    args = parser.parse_args(argv)
    setup_logging(settings.log_level, settings.log_format)
    if not args.redis_url:
        parser.error("no Redis: set XAI_REDIS_URL or pass --redis-url")
    service = build_service(settings)
    service.registry.load_all()  # load once, before the first job (each failure is logged)
    tasks.set_service(service, settings)
    models = {model_id: state["status"] for model_id, state in service.registry.states().items()}
    connection = connect(args.redis_url)
    queue = Queue(args.queue, connection=connection, serializer=JSONSerializer)
    reaper = Reaper([queue])
    reaper.start()
    round_ = 0
    while not tasks.shutdown.is_set():
        name = args.name if round_ == 0 else (f"{args.name}-{round_}" if args.name else None)
        worker = ExplanationWorker([queue], connection=connection, serializer=JSONSerializer, name=name)
        worker.device, worker.models = str(service.registry.device), models
        log.info("worker %s on %s, device %s", worker.name, args.queue, service.registry.device)
        try:
            worker.work(burst=args.burst, logging_level=settings.log_level.upper(), with_scheduler=False)
        except redis.RedisError as exc:
            log.warning("the worker loop stopped: Redis does not answer (%s)", exc)
        if args.burst or tasks.shutdown.is_set() or worker._stop_requested:
            break
        round_ += 1
        wait_for_redis(connection, tasks.shutdown)
    reaper.stop()


if __name__ == "__main__":
    main()
