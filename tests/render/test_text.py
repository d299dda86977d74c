"""The text renderer: tokens shaded by sign and strength, values visible, unknown words marked, a legend."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import numpy as np
import pytest

from explainers.render.text import NEGATIVE_RGB, POSITIVE_RGB, text_page, tokens_html

_RGBA = re.compile(r"background-color:rgba\((\d+),(\d+),(\d+),([\d.]+)\)")


class Tokens(HTMLParser):
    """Collects each `xai-token` span: its attributes, its word and its visible value."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[dict[str, str]] = []
        self.classes: list[str] = []
        self._field: str | None = None
        self.legend_text = ""
        self._in_legend = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        cls = a.get("class", "")
        self.classes.append(cls)
        if self._in_legend:
            self._in_legend += 1
        if "xai-legend" in cls.split():
            self._in_legend = 1
        if "xai-token" in cls.split():
            self.tokens.append({**a, "word": "", "value": ""})
        elif cls in ("xai-word", "xai-value"):
            self._field = cls[4:]

    def handle_endtag(self, tag: str) -> None:
        self._field = None
        if self._in_legend:
            self._in_legend -= 1

    def handle_data(self, data: str) -> None:
        if self._field and self.tokens:
            self.tokens[-1][self._field] += data
        if self._in_legend:
            self.legend_text += data


def parse(fragment: str) -> Tokens:
    parser = Tokens()
    parser.feed(fragment)
    parser.close()
    return parser


def rgba(token: dict[str, str]) -> tuple[int, int, int, float]:
    match = _RGBA.search(token["style"])
    assert match, token["style"]
    return int(match[1]), int(match[2]), int(match[3]), float(match[4])


def test_tokens_are_escaped_shaded_by_sign_and_show_their_values() -> None:
    tokens = ["good", "<script>alert(1)</script>", "bad", 'a"b&c']
    out = tokens_html(tokens, [2.0, 0.0, -1.0, 0.5], caption="ig · positive (p = 0.900)", label="positive")
    assert out.startswith('<div class="xai-text"') and out.endswith("</div>")
    assert "<script>" not in out and "&lt;script&gt;" in out
    parsed = parse(out)
    assert [t["word"] for t in parsed.tokens] == tokens  # the parser unescapes: the words come back as typed
    pos, zero, neg, weak = parsed.tokens
    assert rgba(pos)[:3] == POSITIVE_RGB and rgba(neg)[:3] == NEGATIVE_RGB
    assert rgba(pos)[3] == pytest.approx(1.0) and rgba(zero)[3] == 0.0
    assert rgba(neg)[3] == pytest.approx(0.5) and rgba(weak)[3] == pytest.approx(0.25)
    assert [t["value"] for t in parsed.tokens] == ["+2", "0", "-1", "+0.5"]  # visible, not only in a tooltip
    assert pos["title"] == "+2" and pos["data-score"] == "+2"
    assert "xai-caption" in parsed.classes and "ig · positive (p = 0.900)" in out
    assert "against positive" in parsed.legend_text and "for positive" in parsed.legend_text
    assert "max |value| 2" in parsed.legend_text
    assert "outside the vocabulary" not in parsed.legend_text  # no unknown words, no such entry


def test_unknown_tokens_are_marked_and_explained_in_the_legend() -> None:
    out = tokens_html(["the", "plot", "was", "marvellous"], [0.1, 0.2, 0.0, 0.4], unknown=[3], label="positive")
    parsed = parse(out)
    known, unknown = parsed.tokens[:3], parsed.tokens[3]
    assert "xai-unknown" in unknown["class"].split() and unknown["data-unknown"] == "true"
    assert "dashed" in unknown["style"] and "<unk>" in unknown["title"]
    assert all("xai-unknown" not in t["class"] and "data-unknown" not in t for t in known)
    assert "1 word" in parsed.legend_text and "outside the vocabulary" in parsed.legend_text


def test_unsigned_maps_use_one_hue_and_say_so() -> None:
    parsed = parse(tokens_html(["a", "b"], np.array([-1.0, 3.0]), signed=False, label="spam"))
    a, b = parsed.tokens
    assert rgba(a)[:3] == rgba(b)[:3] and rgba(a)[3] == 0.0 and rgba(b)[3] == 1.0
    assert [a["value"], b["value"]] == ["0", "3"]
    assert "most relevant for spam" in parsed.legend_text and "against" not in parsed.legend_text


def test_edge_cases() -> None:
    zeros = parse(tokens_html(["x", "y"], [0.0, np.nan])).tokens
    assert all(rgba(t)[3] == 0.0 and t["value"] == "0" for t in zeros)
    assert parse(tokens_html([], [])).tokens == []
    with pytest.raises(ValueError):
        tokens_html(["a"], [1.0, 2.0])


def test_standalone_page_wraps_the_fragment() -> None:
    fragment = tokens_html(["fine"], [1.0])
    page = text_page(fragment, title="saliency <b>")
    assert page.startswith("<!doctype html>") and '<meta charset="utf-8">' in page
    assert "<title>saliency &lt;b&gt;</title>" in page and fragment in page
