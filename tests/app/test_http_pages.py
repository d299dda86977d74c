"""The page, the offline docs, the examples, sample rows and the job list, through HTTP."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient

from app.settings import DEFAULT_EXAMPLES_DIR
from tests.app.conftest import FEATURES, assert_error, b64
from tests.conftest import png_bytes

STATIC = Path(__file__).resolve().parents[2] / "app" / "static"


class Assets(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for key, value in attrs:
            if key in ("src", "href") and value:
                self.urls.append(value)


def assets(html: str) -> list[str]:
    parser = Assets()
    parser.feed(html)
    return parser.urls


def test_the_page_and_its_assets_come_from_the_app(client: TestClient) -> None:
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    urls = assets(page.text)
    assert urls and all(u.startswith("/") and not u.startswith("//") for u in urls), urls
    for url in urls:
        response = client.get(url)
        assert response.status_code == 200, url
    sources = "".join(p.read_text() for p in (STATIC / "js").glob("*.js"))
    modules = re.findall(r"""from\s+["'](\./[\w-]+\.js)["']""", sources)
    for module in set(modules):  # every ES module a module imports exists
        assert (STATIC / "js" / module[2:]).is_file(), module
    for source in [*STATIC.glob("js/*.js"), *STATIC.glob("css/*.css"), STATIC / "index.html"]:
        assert not re.search(r"https?://", source.read_text()), f"{source.name} refers to the internet"


def test_docs_and_redoc_use_vendored_assets(client: TestClient) -> None:
    for path, needed in (("/docs", ("swagger-ui-bundle.js", "swagger-ui.css")), ("/redoc", ("redoc.standalone.js",))):
        page = client.get(path)
        assert page.status_code == 200
        urls = assets(page.text)
        assert all(not u.startswith(("http:", "https:", "//")) for u in urls), (path, urls)
        assert "fonts.googleapis" not in page.text and "cdn.jsdelivr" not in page.text
        for name in needed:
            url = next(u for u in urls if u.endswith(name))
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 100_000, url
    for licence in ("swagger-ui/LICENSE", "redoc/LICENSE"):
        assert (STATIC / "vendor" / licence).is_file()
    assert "/docs" not in client.get("/openapi.json").json()["paths"]


def test_examples_are_listed_and_served(client: TestClient) -> None:
    listing = client.get("/examples").json()["examples"]
    names = {e["name"] for e in listing}
    on_disk = {p.name for p in DEFAULT_EXAMPLES_DIR.iterdir() if p.suffix in (".png", ".jpg", ".txt", ".json")}
    assert names == on_disk and {"shape-0.png", "astronaut.jpg", "chelsea.jpg", "reviews.txt"} <= names
    for example in listing:
        response = client.get(example["url"])
        assert response.status_code == 200
        assert response.content == (DEFAULT_EXAMPLES_DIR / example["name"]).read_bytes()
        assert response.headers["content-type"].startswith(example["media_type"])
        assert example["kind"] == {".png": "image", ".jpg": "image", ".txt": "text", ".json": "json"}[
            Path(example["name"]).suffix]
    assert_error(client.get("/examples/nope.png"), 404, "unknown_example")
    assert client.get("/examples/..%2Fpyproject.toml").status_code == 404
    assert_error(client.get("/examples/README.md"), 404, "unknown_example")  # only inputs are served


def test_sample_rows_of_a_tabular_model(client: TestClient, tiny_dir: Path) -> None:
    background = np.load(tiny_dir / "tiny-tabular" / "background.npy")
    body = client.get("/models/tiny-tabular/sample", params={"index": 5}).json()
    assert body["model_id"] == "tiny-tabular" and body["index"] == 5 and body["count"] == len(background)
    assert list(body["input"]) == ["features"]
    assert list(body["input"]["features"]) == list(FEATURES)
    np.testing.assert_allclose(list(body["input"]["features"].values()), background[5], rtol=1e-6)
    explained = client.post("/explain/saliency", json={"model_id": "tiny-tabular", "input": body["input"]})
    assert explained.status_code == 200, explained.text  # ready to send as it is
    error = assert_error(client.get("/models/tiny-tabular/sample", params={"index": 999}), 404, "no_sample")
    assert error["details"] == {"count": len(background)}
    assert_error(client.get("/models/tiny-tabular/sample", params={"index": -1}), 422, "invalid_request")
    assert_error(client.get("/models/tiny-image/sample"), 404, "no_sample")
    assert_error(client.get("/models/nope/sample"), 404, "unknown_model")


def test_jobs_are_listed_newest_first(client: TestClient) -> None:
    image = b64(png_bytes(np.zeros((16, 16, 3), dtype=np.uint8)))
    ids = []
    for stride in (4, 8):  # two different requests (identical ones join one job)
        accepted = client.post("/explain/occlusion", json={"model_id": "tiny-image", "input": {"image": image},
                                                           "params": {"window": 8, "stride": stride}})
        assert accepted.status_code == 202
        ids.append(accepted.json()["job_id"])
    jobs = client.get("/jobs", params={"limit": 1000}).json()["jobs"]
    listed = [j["job_id"] for j in jobs]
    assert set(ids) <= set(listed) and listed.index(ids[1]) < listed.index(ids[0])
    mine = next(j for j in jobs if j["job_id"] == ids[0])
    assert mine["status"] == "queued" and mine["method"] == "occlusion" and mine["model_id"] == "tiny-image"
    assert "result" not in mine
    assert len(client.get("/jobs", params={"limit": 1}).json()["jobs"]) == 1
    assert_error(client.get("/jobs", params={"limit": 0}), 422, "invalid_request")
    for job_id in ids:
        client.delete(f"/jobs/{job_id}")
