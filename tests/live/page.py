"""Driving the page at `/` as a person would: pick, upload, type, click, read."""

from __future__ import annotations

import base64
import io
from pathlib import Path
from typing import Any

from PIL import Image

from tests.live.browser import wait_for


class Page:
    def __init__(self, driver: Any, base_url: str, screenshots: Path) -> None:
        self.d = driver
        self.url = base_url
        self.shots = screenshots
        self._before: set[str] = set()  # the result cards on the page before the last click

    # -- finding things ---------------------------------------------------------------------------
    def css(self, selector: str) -> Any:
        from selenium.webdriver.common.by import By

        return self.d.find_element(By.CSS_SELECTOR, selector)

    def all(self, selector: str) -> list[Any]:
        from selenium.webdriver.common.by import By

        return list(self.d.find_elements(By.CSS_SELECTOR, selector))

    def js(self, script: str, *args: Any) -> Any:
        return self.d.execute_script(script, *args)

    # -- doing things -----------------------------------------------------------------------------
    def open(self) -> None:
        self.d.get(self.url + "/")
        wait_for(lambda: self.js("return document.body.dataset.ready === 'true'"), 30, "the page to load")
        self.d.get_log("browser")  # start each test with a clean console

    def select(self, selector: str, value: str) -> None:
        from selenium.webdriver.support.ui import Select

        Select(self.css(selector)).select_by_value(value)

    def model(self, model_id: str) -> None:
        self.select("#model-select", model_id)
        wait_for(lambda: self.js("return document.querySelector('#method-select').options.length > 0"))

    def method(self, name: str) -> None:
        self.select("#method-select", name)
        wait_for(lambda: self.all("#params-form [data-param]") or self.all("#params-form p"), what="the params form")

    def param(self, name: str, value: object) -> None:
        field = self.css(f'#params-form [data-param="{name}"] input')
        field.clear()
        field.send_keys(str(value))

    def upload(self, path: Path) -> None:
        self.css("#file-input").send_keys(str(path))
        wait_for(lambda: path.name in self.css("#image-preview").text, 10, "the preview")

    def drop(self, url: str, name: str) -> None:
        """Drop a file on the drop zone, as a drag from the desktop does (a DataTransfer with a File)."""
        self.js("""
            const [url, name, done] = arguments;
            fetch(url).then((r) => r.blob()).then((blob) => {
              const data = new DataTransfer();
              data.items.add(new File([blob], name, {type: blob.type}));
              const zone = document.querySelector('#drop-zone');
              zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: data, bubbles: true, cancelable: true}));
              zone.dispatchEvent(new DragEvent('drop', {dataTransfer: data, bubbles: true, cancelable: true}));
            });""", url, name)
        wait_for(lambda: name in self.css("#image-preview").text, 10, "the dropped image's preview")

    def click(self, selector: str) -> None:
        self._before = {c.id for c in self.all(".result")}
        self.css(selector).click()

    def shot(self, name: str) -> Path:
        self.js("window.scrollTo(0, 0); document.querySelector('.results').scrollTo(0, 0)")
        path = self.shots / name
        self.d.save_screenshot(str(path))
        return path

    # -- reading results --------------------------------------------------------------------------
    def card(self, root: str = "#single-result", timeout: float = 60) -> Any:
        """The first finished result card that the last click made (an earlier one may linger until the
        page replaces it: the page reads the upload first)."""
        return wait_for(lambda: next((c for c in self.all(f"{root} .result") if c.id not in self._before
                                      and c.get_attribute("data-state") != "running"), None), timeout, "a result")

    def picture(self, card: Any) -> Image.Image:
        src = card.find_element("css selector", "img.overlay").get_attribute("src")
        assert src.startswith("data:image/png;base64,")
        img = Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1])))
        img.load()
        return img

    def fetch_bytes(self, url: str) -> bytes:
        """The bytes behind a link on the page (a blob: or data: URL), read by the page itself."""
        encoded = self.d.execute_async_script("""
            const [url, done] = arguments;
            fetch(url).then((r) => r.arrayBuffer()).then((buf) => {
              let s = ''; const bytes = new Uint8Array(buf);
              for (let i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
              done(btoa(s));
            }).catch((err) => done("!" + err));""", url)
        assert not encoded.startswith("!"), f"the page could not read {url}: {encoded}"
        return base64.b64decode(encoded)
