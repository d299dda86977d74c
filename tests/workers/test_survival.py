"""Workers that survive: SIGTERM with no retries, a Redis outage of over 30 s, a cancel that ends quietly;
identical requests that join one job and then come from the cache."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import redis
from fastapi.testclient import TestClient

from app.embedded import redis_binary
from app.main import create_app
from app.settings import Settings
from tests.workers.conftest import WorkerProcess, free_port
from tests.workers.test_jobs import image_body, jobs_dir, long_body, poll, queue_name, submit  # noqa: F401

OUTAGE_S = 32


def test_sigterm_with_no_retries_gives_the_job_back_without_spending_one(jobs_dir, redis_url, queue_name,  # noqa: F811
                                                                         tmp_path):
    settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name, job_retries=0)
    with TestClient(create_app(settings)) as api:
        first = WorkerProcess(redis_url, jobs_dir, queue_name, tmp_path / "w1.log")
        first.wait_alive(redis_url, queue_name)
        job_id = submit(api, "rise", long_body())
        poll(api, job_id, {"started"}, timeout=60)
        first.signal(signal.SIGTERM)
        assert first.proc.wait(timeout=30) == 0
        state = api.get(f"/jobs/{job_id}").json()
        assert state["status"] == "queued" and state["attempts"] == 1 and state["ended_at"] is None, state
        second = WorkerProcess(redis_url, jobs_dir, queue_name, tmp_path / "w2.log")
        try:
            final = poll(api, job_id, {"finished", "failed"}, timeout=120)[-1]
            assert final["status"] == "finished" and final["attempts"] == 1, final
        finally:
            second.stop()
        log = (tmp_path / "w1.log").read_text()
        assert "given back to the queue" in log and "Traceback" not in log


def test_cancel_ends_the_job_quietly(jobs_dir, redis_url, queue_name, tmp_path):  # noqa: F811
    settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name)
    worker = WorkerProcess(redis_url, jobs_dir, queue_name, tmp_path / "w.log")
    try:
        with TestClient(create_app(settings)) as api:
            worker.wait_alive(redis_url, queue_name)
            running = submit(api, "rise", long_body())
            poll(api, running, {"started"}, timeout=60)
            api.delete(f"/jobs/{running}")
            final = poll(api, running, {"canceled", "finished", "failed"}, timeout=30)[-1]
            assert final["status"] == "canceled" and final["ended_at"], final
            assert final["error"]["code"] == "canceled"
            queued = submit(api, "rise", long_body(seed=5))
            submit(api, "rise", long_body(seed=6))  # keeps the worker busy
            state = api.delete(f"/jobs/{queued}").json()
            assert state["status"] == "canceled" and state["ended_at"], state
            # the API shows the cancel at once; the worker stops at its next progress check: wait for its line
            deadline = time.monotonic() + 30
            while f"job {running} canceled" not in (tmp_path / "w.log").read_text() and time.monotonic() < deadline:
                time.sleep(0.1)
    finally:
        worker.stop()
    log = (tmp_path / "w.log").read_text()
    assert f"job {running} canceled by the client" in log and "Traceback" not in log, log[-3000:]
    assert " INFO " in next(line for line in log.splitlines() if f"job {running} canceled" in line)


def test_identical_requests_join_one_job_then_come_from_the_cache(jobs_dir, redis_url, queue_name,  # noqa: F811
                                                                 tmp_path):
    settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=redis_url,
                        queue_name=queue_name)
    with TestClient(create_app(settings)) as api:
        body = image_body(n_masks=400, batch_size=8, seed=4)
        first = api.post("/explain/rise", json=body).json()
        second = api.post("/explain/rise", json=body).json()
        assert second["job_id"] == first["job_id"] and second["joined"] is True and first["joined"] is False
        other = api.post("/explain/rise", json=image_body(n_masks=400, batch_size=8, seed=5)).json()
        assert other["job_id"] != first["job_id"]
        worker = WorkerProcess(redis_url, jobs_dir, queue_name, tmp_path / "w.log")
        try:
            done = poll(api, first["job_id"], {"finished", "failed"})[-1]
            assert done["status"] == "finished" and done["result"]["details"]["cached"] is False
            third = api.post("/explain/rise", json=body)
            assert third.status_code == 200, third.text  # from the cache, no job
            assert third.json()["details"]["cached"] is True
            assert third.json()["attribution"] == done["result"]["attribution"]
            metrics = api.get("/metrics").text
            assert 'xai_cache_total{event="hits"} 1' in metrics
            assert 'xai_jobs_total{method="rise",model="tiny-image",status="finished"}' in metrics
        finally:
            worker.stop()


@pytest.fixture
def restartable_redis(tmp_path: Path):
    """A redis-server of our own, with an append-only file, that the test stops and starts again."""
    port = free_port()
    folder = tmp_path / "redis"
    folder.mkdir()
    args = [redis_binary(), "--port", str(port), "--bind", "127.0.0.1", "--appendonly", "yes", "--save", "",
            "--dir", str(folder)]
    state: dict[str, subprocess.Popen[bytes]] = {}

    def start() -> None:
        state["proc"] = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        client = redis.Redis(port=port)
        for _ in range(200):
            try:
                client.ping()
                return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis did not start")

    def stop() -> None:
        state["proc"].terminate()
        state["proc"].wait(timeout=10)

    start()
    yield f"redis://127.0.0.1:{port}/0", start, stop
    if state["proc"].poll() is None:
        stop()


def test_a_standalone_worker_rides_out_a_redis_outage(jobs_dir, restartable_redis, tmp_path):  # noqa: F811
    url, start, stop = restartable_redis
    queue = "outage"
    worker = WorkerProcess(url, jobs_dir, queue, tmp_path / "w.log")
    try:
        worker.wait_alive(url, queue)
        stop()
        time.sleep(OUTAGE_S)
        assert worker.proc.poll() is None, (tmp_path / "w.log").read_text()[-3000:]
        start()
        settings = Settings(model_dir=jobs_dir, preload="startup", device="cpu", redis_url=url, queue_name=queue)
        with TestClient(create_app(settings)) as api:
            worker.wait_alive(url, queue, timeout=60)
            job_id = submit(api, body=image_body(window=4, stride=4))
            final = poll(api, job_id, {"finished", "failed"}, timeout=60)[-1]
            assert final["status"] == "finished", final
        assert worker.proc.poll() is None
    finally:
        worker.stop()
    log = (tmp_path / "w.log").read_text()
    assert "Redis does not answer" in log and "Redis answers again" in log, log[-3000:]
