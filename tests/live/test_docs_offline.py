"""/docs and /redoc render every operation with no network but the service itself."""

from __future__ import annotations

from typing import Any

import httpx

from tests.live.browser import severe_logs, wait_for
from tests.live.conftest import LiveServer

RESOURCES = ("return performance.getEntriesByType('resource')"
             ".map((e) => ({url: e.name, status: e.responseStatus, size: e.transferSize}))")


def operations(live: LiveServer) -> int:
    spec = httpx.get(f"{live.url}/openapi.json").json()
    return sum(len(ops) for ops in spec["paths"].values())


def only_from(chrome: Any, live: LiveServer) -> list[str]:
    """The resources a page loaded, all from the service; anything else must have been refused unsent."""
    entries = chrome.execute_script(RESOURCES)
    refused = " ".join(m for m in severe_logs(chrome) if "Content Security Policy" in m and "blocked" in m)
    for entry in entries:
        if entry["url"].startswith((live.url, "data:", "blob:")):
            continue
        assert entry["status"] == 0 and entry["size"] == 0 and entry["url"] in refused, \
            f"loaded from outside the service: {entry}"
    return [e["url"] for e in entries]


def test_swagger_ui_renders_the_operations_offline(chrome: Any, live: LiveServer, screenshots: Any) -> None:
    chrome.get(f"{live.url}/docs")
    count = operations(live)
    wait_for(lambda: len(chrome.find_elements("css selector", ".opblock")) == count, 30, f"{count} operations")
    loaded = only_from(chrome, live)
    assert any(u.endswith("/static/vendor/swagger-ui/swagger-ui-bundle.js") for u in loaded)
    assert any(u.endswith("/openapi.json") for u in loaded)
    paths = {e.text for e in chrome.find_elements("css selector", ".opblock-summary-path")}
    assert "/explain/{method}" in {p.replace("\u200b", "") for p in paths}
    assert not severe_logs(chrome)
    chrome.save_screenshot(str(screenshots / "docs.png"))


def test_redoc_renders_the_operations_offline(chrome: Any, live: LiveServer) -> None:
    chrome.get(f"{live.url}/redoc")
    count = operations(live)
    wait_for(lambda: len(chrome.find_elements("css selector", "[data-section-id^='operation/']")) >= count, 60,
             f"{count} operations in ReDoc")
    loaded = only_from(chrome, live)
    assert any(u.endswith("/static/vendor/redoc/redoc.standalone.js") for u in loaded)
    assert "GradcamParams" in chrome.page_source  # the per-method params schemas are documented
    errors = severe_logs(chrome)  # only ReDoc's logo from its CDN, refused by the page's policy
    assert all("cdn.redoc.ly" in m and "Content Security Policy" in m for m in errors), errors
