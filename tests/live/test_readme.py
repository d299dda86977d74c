"""The README's shell and Python examples run as written against a live service.

Each ```bash and ```python block runs, unless the line before it is a
`<!-- readme-test: skip (reason) -->` comment (a server that never exits, Docker, the test suite
itself). Blocks run in a scratch folder that sees the repository's `examples/`; `localhost:8000` is
the live service's address (the only change made to a block), `$XAI_URL` points there too, and
`curl` fails on an HTTP error status (`--fail-with-body`), so a broken request fails its block.
```json blocks must parse.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.live.conftest import EXAMPLES, ROOT, LiveServer

README = ROOT / "README.md"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.DOTALL | re.MULTILINE)
SKIP = re.compile(r"<!-- readme-test: skip \((.+?)\) -->\s*$")
MAX_SKIPPED = 8
PREAMBLE = 'set -euo pipefail\ncurl() { command curl --silent --show-error --fail-with-body "$@"; echo; }\n'


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    code: str
    skip: str | None


def blocks() -> list[Block]:
    text = README.read_text()
    found = []
    for match in FENCE.finditer(text):
        line = text.count("\n", 0, match.start()) + 1
        before = text[:match.start()].rstrip("\n").rsplit("\n", 1)[-1]
        skip = SKIP.search(before)
        found.append(Block(line, match[1], match[2], skip[1] if skip else None))
    return found


RUNNABLE = [b for b in blocks() if b.lang in ("bash", "sh", "python") and b.skip is None]


def test_the_skipped_blocks_are_few_and_say_why() -> None:
    shell = [b for b in blocks() if b.lang in ("bash", "sh", "python")]
    skipped = [b for b in shell if b.skip]
    assert len(skipped) <= MAX_SKIPPED, [(b.line, b.skip) for b in skipped]
    assert all(len(b.skip or "") > 10 for b in skipped)
    assert len(RUNNABLE) >= 4 and any("xai " in b.code for b in RUNNABLE)
    assert all(b.lang for b in blocks()), "every code block names its language"
    first_two = shell[:2]  # the opening commands: install and run the service; install and run the tests
    assert "python -m app" in first_two[0].code and "python -m pytest" in first_two[1].code


def test_json_blocks_parse() -> None:
    for block in blocks():
        if block.lang == "json":
            json.loads(block.code)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory, live: LiveServer) -> tuple[Path, dict[str, str]]:
    folder = tmp_path_factory.mktemp("readme")
    (folder / "examples").symlink_to(EXAMPLES)
    bin_dir = folder / "bin"
    bin_dir.mkdir()
    venv_bin = Path(sys.executable).parent
    if not shutil.which("xai", path=str(venv_bin)):  # a dev venv installed before `xai` existed
        shim = bin_dir / "xai"
        shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m xai_client "$@"\n')
        shim.chmod(0o755)
    env = {**os.environ, "XAI_URL": live.url, "PYTHONPATH": str(ROOT),
           "PATH": os.pathsep.join([str(bin_dir), str(venv_bin), os.environ.get("PATH", "")])}
    return folder, env


@pytest.mark.parametrize("block", RUNNABLE, ids=[f"line-{b.line}" for b in RUNNABLE])
def test_readme_block_runs(block: Block, scratch: tuple[Path, dict[str, str]], live: LiveServer) -> None:
    folder, env = scratch
    code = block.code.replace("localhost:8000", live.url.removeprefix("http://"))
    command = [sys.executable, "-c", code] if block.lang == "python" else ["bash", "-c", PREAMBLE + code]
    done = subprocess.run(command, cwd=folder, env=env, capture_output=True, text=True, timeout=240, check=False)
    assert done.returncode == 0, f"README line {block.line} failed:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
    for written in re.findall(r"(?:-o|--npy|save\(\"|open\(')\s*\"?([\w.-]+\.(?:png|npy|html))", code):
        assert (folder / written).stat().st_size > 100, f"{written} was not written"
