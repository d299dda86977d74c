"""API keys: hashed, with scopes; owners of jobs; per-key limits; CORS; keyless by default."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from app.keys import hash_key
from tests.app.conftest import assert_error, b64, make_client
from tests.conftest import png_bytes

KEYS = {"alice": ("key-alice-0123456789", ["explain", "jobs"], {}),
        "bob": ("key-bob-0123456789", ["explain", "jobs"], {}),
        "reader": ("key-reader-0123456789", ["explain"], {}),
        "root": ("key-root-0123456789", ["explain", "jobs", "admin"], {}),
        "slow": ("key-slow-0123456789", ["explain"], {"rate_limit": 3}),
        "capped": ("key-capped-0123456789", ["explain", "jobs"], {"max_jobs": 1})}
IMAGE = b64(png_bytes(np.zeros((16, 16, 3), dtype=np.uint8)))


def bearer(name: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {KEYS[name][0]}"}


def job_body(stride: int) -> dict:
    return {"model_id": "tiny-image", "input": {"image": IMAGE}, "params": {"window": 8, "stride": stride}}


@pytest.fixture(scope="module")
def keyed(tiny_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    folder = tmp_path_factory.mktemp("keys")
    entries = [{"name": name, "sha256": hash_key(key), "scopes": scopes, **extra}
               for name, (key, scopes, extra) in KEYS.items()]
    (folder / "keys.json").write_text(json.dumps({"keys": entries[1:]}))
    with make_client(tiny_dir, api_keys=json.dumps(entries[:1]), api_keys_file=folder / "keys.json",
                     state_dir=folder / "state", metrics_access="admin", cors_origins="https://app.example") as c:
        yield c


def test_every_route_but_the_probes_needs_a_key(keyed: TestClient) -> None:
    assert keyed.get("/healthz").status_code == 200
    assert keyed.get("/readyz").status_code in (200, 503)
    for path in ("/models", "/methods", "/examples", "/jobs", "/openapi.json", "/docs", "/metrics"):
        response = keyed.get(path)
        assert_error(response, 401, "missing_api_key")
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert_error(keyed.post("/explain/saliency", json={**job_body(4), "params": {}}), 401, "missing_api_key")
    assert_error(keyed.get("/models", headers={"Authorization": "Bearer nope"}), 401, "invalid_api_key")
    assert_error(keyed.get("/models", headers={"X-API-Key": KEYS["alice"][0][:-1]}), 401, "invalid_api_key")
    assert keyed.get("/", ).status_code == 200  # the page itself; its calls carry the key


def test_bearer_and_x_api_key_both_work(keyed: TestClient) -> None:
    assert keyed.get("/models", headers=bearer("alice")).status_code == 200
    assert keyed.get("/models", headers={"X-API-Key": KEYS["bob"][0]}).status_code == 200
    response = keyed.post("/explain/saliency", json={**job_body(4), "params": {}}, headers=bearer("reader"))
    assert response.status_code == 200, response.text


def test_scopes(keyed: TestClient) -> None:
    error = assert_error(keyed.get("/jobs", headers=bearer("reader")), 403, "insufficient_scope")
    assert error["details"]["needed"] == "jobs"
    assert_error(keyed.get("/metrics", headers=bearer("alice")), 403, "insufficient_scope")
    assert keyed.get("/metrics", headers=bearer("root")).status_code == 200
    assert_error(keyed.post("/models/tiny-image/patterns", headers=bearer("alice")), 403, "insufficient_scope")
    assert keyed.get("/openapi.json", headers=bearer("reader")).status_code == 200


def test_a_job_belongs_to_its_key(keyed: TestClient) -> None:
    accepted = keyed.post("/explain/occlusion", json=job_body(3), headers=bearer("alice"))
    assert accepted.status_code == 202, accepted.text
    job_id = accepted.json()["job_id"]
    mine = keyed.get(f"/jobs/{job_id}", headers=bearer("alice")).json()
    assert mine["owner"] == "alice" and mine["status"] == "queued"
    for path in (f"/jobs/{job_id}", f"/jobs/{job_id}/overlay.png", f"/jobs/{job_id}/attribution.npy"):
        assert_error(keyed.get(path, headers=bearer("bob")), 404, "job_not_found")
    assert_error(keyed.delete(f"/jobs/{job_id}", headers=bearer("bob")), 404, "job_not_found")
    assert job_id not in [j["job_id"] for j in keyed.get("/jobs", headers=bearer("bob")).json()["jobs"]]
    assert job_id in [j["job_id"] for j in keyed.get("/jobs", headers=bearer("alice")).json()["jobs"]]
    assert job_id in [j["job_id"] for j in keyed.get("/jobs", headers=bearer("root")).json()["jobs"]]  # admin
    # bob sending the very same request gets a job of his own, not alice's
    theirs = keyed.post("/explain/occlusion", json=job_body(3), headers=bearer("bob")).json()
    assert theirs["job_id"] != job_id and theirs["joined"] is False
    keyed.delete(f"/jobs/{job_id}", headers=bearer("alice"))
    keyed.delete(f"/jobs/{theirs['job_id']}", headers=bearer("bob"))


def test_the_job_list_pages_and_filters_by_status(keyed: TestClient) -> None:
    ids = [keyed.post("/explain/occlusion", json=job_body(s), headers=bearer("bob")).json()["job_id"]
           for s in (1, 2, 4)]
    keyed.delete(f"/jobs/{ids[0]}", headers=bearer("bob"))
    first = keyed.get("/jobs", params={"limit": 2}, headers=bearer("bob")).json()
    assert [j["job_id"] for j in first["jobs"]] == [ids[2], ids[1]] and first["next_offset"] == 2
    rest = keyed.get("/jobs", params={"limit": 2, "offset": 2}, headers=bearer("bob")).json()
    assert ids[0] in [j["job_id"] for j in rest["jobs"]]
    canceled = keyed.get("/jobs", params={"status": "canceled"}, headers=bearer("bob")).json()["jobs"]
    assert ids[0] in [j["job_id"] for j in canceled] and all(j["status"] == "canceled" for j in canceled)
    queued = keyed.get("/jobs", params={"status": "queued"}, headers=bearer("bob")).json()["jobs"]
    assert {ids[1], ids[2]} <= {j["job_id"] for j in queued} and ids[0] not in {j["job_id"] for j in queued}
    assert_error(keyed.get("/jobs", params={"status": "lost"}, headers=bearer("bob")), 422, "invalid_request")
    for job_id in ids[1:]:
        keyed.delete(f"/jobs/{job_id}", headers=bearer("bob"))


def test_rate_limit_answers_429_with_retry_after(keyed: TestClient) -> None:
    statuses = [keyed.get("/models", headers=bearer("slow")) for _ in range(5)]
    assert [r.status_code for r in statuses[:3]] == [200, 200, 200]
    error = assert_error(statuses[4], 429, "rate_limited")
    assert 1 <= int(statuses[4].headers["retry-after"]) <= 61 and error["details"]["limit_per_minute"] == 3
    assert keyed.get("/models", headers=bearer("alice")).status_code == 200  # per key


def test_the_job_cap_answers_429(keyed: TestClient) -> None:
    first = keyed.post("/explain/occlusion", json=job_body(5), headers=bearer("capped"))
    assert first.status_code == 202
    second = keyed.post("/explain/occlusion", json=job_body(6), headers=bearer("capped"))
    assert_error(second, 429, "too_many_jobs")
    assert second.headers["retry-after"].isdigit()
    keyed.delete(f"/jobs/{first.json()['job_id']}", headers=bearer("capped"))
    third = keyed.post("/explain/occlusion", json=job_body(6), headers=bearer("capped"))
    assert third.status_code == 202, third.text  # the canceled job no longer counts
    keyed.delete(f"/jobs/{third.json()['job_id']}", headers=bearer("capped"))


def test_cors_only_for_the_configured_origins(keyed: TestClient, client: TestClient) -> None:
    allowed = keyed.options("/models", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "GET",
                                                "Access-Control-Request-Headers": "authorization"})
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    other = keyed.get("/models", headers={"Origin": "https://evil.example", **bearer("alice")})
    assert "access-control-allow-origin" not in other.headers
    assert "access-control-allow-origin" not in client.get("/models", headers={"Origin": "https://a.b"}).headers


def test_without_keys_everyone_is_anonymous(client: TestClient) -> None:
    assert client.get("/models").status_code == 200 and client.get("/metrics").status_code == 200
    assert client.get("/models", headers={"Authorization": "Bearer whatever"}).status_code == 200


def test_bad_key_settings_fail_at_start(tiny_dir: Path) -> None:
    with pytest.raises(ValueError, match="API keys"):
        make_client(tiny_dir, api_keys='[{"name": "x", "sha256": "not-a-hash"}]')
    with pytest.raises(ValueError, match="unique"):
        entry = {"name": "x", "sha256": hash_key("k")}
        make_client(tiny_dir, api_keys=json.dumps([entry, {**entry, "sha256": hash_key("k2")}]))
