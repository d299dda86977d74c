"""Static checks of docker-compose.yml (no Docker engine runs here): it is parsed and checked against
what it deploys: the settings' fields and validation, the app's routes, the entry modules, and the
model server's init script, which is run for real with container paths mapped to temporary folders."""

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
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from app.settings import Settings
from tests.deploy.conftest import COMPOSE, DOCKERFILE, ROOT, dockerfile_env

XAI_SERVICES = ("api", "worker", "worker-cpu")  # the services that run our image
WORKERS = ("worker", "worker-cpu")
CONDITIONS = {"service_started", "service_healthy", "service_completed_successfully"}
URL = re.compile(r"https?://[^\s'\"]+")


# -- compose: interpolation ------------------------------------------------------------------------
VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])((?:[^{}]|\{[^{}]*\})*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's `${VAR}`, `${VAR:-default}`, `${VAR-default}`, `${VAR:?error}`, `${VAR:+alt}` and `$$`.
    A required variable missing from `env` gets the value `test-<name>`."""
    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1) or m.group(4), m.group(2), m.group(3) or ""
        have = env.get(name)
        if op in (":-", "-"):
            return have if have or (op == "-" and have is not None) else interpolate(arg, env)
        if op in (":?", "?"):
            return have if have else f"test-{name.lower()}"
        if op in (":+", "+"):
            return interpolate(arg, env) if have else ""
        return have or ""
    return VAR.sub(sub, value)


def resolve(node: Any, env: dict[str, str]) -> Any:
    if isinstance(node, str):
        return interpolate(node, env)
    if isinstance(node, list):
        return [resolve(v, env) for v in node]
    if isinstance(node, dict):
        return {k: resolve(v, env) for k, v in node.items()}
    return node


def variables(value: str) -> set[str]:
    return {m.group(1) or m.group(4) for m in VAR.finditer(value) if m.group(0) != "$$"}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(raw: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The services with every variable at its default (as `docker compose` sees them with no .env)."""
    return resolve(raw["services"], {})


# -- compose: small readers ------------------------------------------------------------------------
def env_of(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {k: "" if v is None else str(v) for k, v in env.items()}


def command_of(service: dict[str, Any]) -> list[str]:
    command = service.get("command", [])
    return shlex.split(command) if isinstance(command, str) else [str(c) for c in command]


def container_ports(service: dict[str, Any]) -> list[int]:
    out = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            out.append(int(port["target"]))
        else:
            out.append(int(str(port).split("/")[0].rsplit(":", 1)[-1]))
    return out


def published(service: dict[str, Any]) -> list[str]:
    """Ports with a fixed host side (which a second replica could not bind)."""
    return [str(p) for p in service.get("ports", []) if isinstance(p, dict) and p.get("published")
            or not isinstance(p, dict) and ":" in str(p)]


def mounts(service: dict[str, Any]) -> list[tuple[str, str, bool]]:
    """(source, target, read_only) of each volume entry; a source starting with . or / is a bind mount."""
    out = []
    for entry in service.get("volumes", []):
        if isinstance(entry, dict):
            out.append((entry.get("source", ""), entry["target"], bool(entry.get("read_only"))))
        else:
            parts = entry.split(":")
            out.append((parts[0], parts[1], len(parts) > 2 and "ro" in parts[2].split(",")))
    return out


def is_bind(source: str) -> bool:
    return source.startswith((".", "/", "~"))


def mount_of(service: dict[str, Any], target: str) -> tuple[str, str, bool]:
    """The mount that holds `target` inside the container (the deepest one)."""
    found = [m for m in mounts(service) if target == m[1] or target.startswith(m[1].rstrip("/") + "/")]
    assert found, f"{target} is on no volume of the service"
    return max(found, key=lambda m: len(m[1]))


def health_test(service: dict[str, Any]) -> str:
    test = service["healthcheck"]["test"]
    return " ".join(test) if isinstance(test, list) else test


def seconds(duration: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    return sum(float(n) * units[u] for n, u in re.findall(r"([\d.]+)(h|ms|us|m|s)", duration))


# -- compose: services ------------------------------------------------------------------------------
def test_the_services_exist(services: dict[str, dict[str, Any]]) -> None:
    assert {"api", "worker", "redis", "modelserver", "models-init"} <= set(services)


def test_api_and_workers_run_one_image(raw: dict[str, Any]) -> None:
    api = raw["services"]["api"]
    for name in WORKERS:
        worker = raw["services"][name]
        assert (worker.get("build"), worker.get("image")) == (api.get("build"), api.get("image")), name
    build = api["build"] if isinstance(api["build"], dict) else {"context": api["build"]}
    context = ROOT / build.get("context", ".")
    assert (context / build.get("dockerfile", "Dockerfile")).resolve() == DOCKERFILE


def served_port(service: dict[str, Any]) -> int:
    """The port `python -m app` listens on: --port, else XAI_PORT, else the image's, else the default."""
    command = command_of(service)
    if "--port" in command:
        return int(command[command.index("--port") + 1])
    env = {**dockerfile_env(), **env_of(service)}
    return int(env.get("XAI_PORT", Settings.model_fields["port"].default))


def test_api_runs_the_app_on_the_published_port(services: dict[str, dict[str, Any]]) -> None:
    api = services["api"]
    assert command_of(api)[:3] == ["python", "-m", "app"]
    port = served_port(api)
    assert container_ports(api) == [port]
    command, env = command_of(api), {**dockerfile_env(), **env_of(api)}
    host = command[command.index("--host") + 1] if "--host" in command else env.get("XAI_HOST")
    assert host == "0.0.0.0", "the API must listen on all interfaces to be reachable through the published port"


@pytest.mark.parametrize("name", WORKERS)
def test_workers_run_the_worker_and_scale(services: dict[str, dict[str, Any]], name: str) -> None:
    worker = services[name]
    assert command_of(worker) == ["python", "-m", "workers"]
    assert "container_name" not in worker and not published(worker), "--scale worker=N needs neither"
    assert seconds(worker["stop_grace_period"]) >= 30, "time to give the running job back on SIGTERM"


def test_the_worker_reserves_a_gpu(services: dict[str, dict[str, Any]]) -> None:
    devices = services["worker"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", [])
               and (d.get("count") or d.get("device_ids")) for d in devices)
    cpu = services["worker-cpu"]
    assert "deploy" not in cpu and cpu.get("profiles"), "the CPU worker is opt-in and reserves nothing"


@pytest.mark.parametrize("name", ["api", "worker", "worker-cpu", "redis", "modelserver", "models-init"])
def test_xai_variables_are_settings_with_valid_values(services: dict[str, dict[str, Any]], name: str,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of(services[name])
    fields = {f"XAI_{field.upper()}" for field in Settings.model_fields}
    assert not {k for k in env if k.startswith("XAI_")} - fields, "not a setting of app/settings.py"
    for key in [k for k in os.environ if k.startswith("XAI_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        if key.startswith("XAI_"):
            monkeypatch.setenv(key, value)
    settings = Settings()  # raises if a value does not validate
    for key, value in env.items():
        if key.startswith("XAI_") and value:
            assert str(getattr(settings, key[4:].lower())) == value


def test_api_and_workers_agree_on_queue_and_registry(services: dict[str, dict[str, Any]]) -> None:
    envs = {name: env_of(services[name]) for name in XAI_SERVICES}
    for key in ("XAI_REDIS_URL", "XAI_QUEUE_NAME", "XAI_MODEL_DIR", "XAI_JOB_TIMEOUT"):
        assert len({env.get(key) for env in envs.values()}) == 1, key
    registry = envs["api"]["XAI_MODEL_DIR"]
    sources = {name: mount_of(services[name], registry) for name in XAI_SERVICES}
    assert len({source for source, _, _ in sources.values()}) == 1
    assert all(target == registry for _, target, _ in sources.values()), "the registry is the mount itself"
    assert all(read_only for _, _, read_only in sources.values()), "only models-init writes the registry"


def test_api_and_workers_share_the_state_folder(services: dict[str, dict[str, Any]]) -> None:
    """A worker's patterns job writes XAI_STATE_DIR; the API's sync pattern methods read it: one volume."""
    from tests.deploy.conftest import dockerfile_env

    state = {name: env_of(services[name]).get("XAI_STATE_DIR", dockerfile_env()["XAI_STATE_DIR"])
             for name in XAI_SERVICES}
    assert len(set(state.values())) == 1
    mounted = {name: mount_of(services[name], state[name]) for name in XAI_SERVICES}
    assert len({source for source, _, _ in mounted.values()}) == 1 and not is_bind(mounted["api"][0])
    assert not any(read_only for _, _, read_only in mounted.values()), "workers write patterns there"


def test_xai_variables_read_from_the_host_are_settings(raw: dict[str, Any]) -> None:
    """`${XAI_...}` in the compose file passes a setting through from .env; anything else is misnamed."""
    fields = {f"XAI_{field.upper()}" for field in Settings.model_fields}
    def strings(node: Any) -> list[str]:
        if isinstance(node, dict):
            return [t for v in node.values() for t in strings(v)]
        return [t for v in node for t in strings(v)] if isinstance(node, list) else [str(node)]
    used = {v for text in strings(raw) for v in variables(text)}
    assert {"REDIS_PASSWORD", "XAI_DEVICE"} <= used
    assert not {v for v in used if v.startswith("XAI_")} - fields


def test_the_redis_url_reaches_redis_with_its_password(raw: dict[str, Any],
                                                       services: dict[str, dict[str, Any]]) -> None:
    redis_cmd_raw = command_of(raw["services"]["redis"])
    url_raw = env_of(raw["services"]["api"])["XAI_REDIS_URL"]
    password_var = variables(redis_cmd_raw[redis_cmd_raw.index("--requirepass") + 1])
    assert password_var and password_var == variables(url_raw.split("@")[0]), "the URL carries redis' password"
    url = urlsplit(env_of(services["api"])["XAI_REDIS_URL"])
    redis_cmd = command_of(services["redis"])
    redis_port = int(redis_cmd[redis_cmd.index("--port") + 1]) if "--port" in redis_cmd else 6379
    assert url.scheme == "redis" and url.hostname == "redis" and (url.port or 6379) == redis_port
    assert url.password == redis_cmd[redis_cmd.index("--requirepass") + 1]
    assert redis_port in container_ports(services["redis"])


def test_redis_persists_and_requires_a_password(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    redis = services["redis"]
    cmd = command_of(redis)
    assert cmd[cmd.index("--appendonly") + 1] == "yes"
    assert cmd[cmd.index("--maxmemory-policy") + 1] == "noeviction", "evicted keys would corrupt the queue"
    password = raw["services"]["redis"]["command"][raw["services"]["redis"]["command"].index("--requirepass") + 1]
    assert re.fullmatch(r"\$\{\w+:\?[^}]+\}", password), "no default password: compose refuses to start without one"
    source, _, read_only = mount_of(redis, "/data")
    assert not is_bind(source) and not read_only
    assert env_of(redis)["REDISCLI_AUTH"] == cmd[cmd.index("--requirepass") + 1], "the healthcheck authenticates"


@pytest.mark.parametrize("name", ["api", "worker", "worker-cpu", "redis", "modelserver"])
def test_healthchecks(services: dict[str, dict[str, Any]], name: str) -> None:
    check = services[name]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and seconds(check["interval"]) > 0
    if check["test"][:2] == ["CMD", "python"]:
        compile(check["test"][check["test"].index("-c") + 1], f"{name} healthcheck", "exec")


def test_the_api_healthcheck_asks_a_real_route(services: dict[str, dict[str, Any]], get_routes: set[str]) -> None:
    (url,) = URL.findall(health_test(services["api"]))
    parts = urlsplit(url)
    assert parts.path in get_routes and parts.port == served_port(services["api"])


def test_the_worker_healthcheck_uses_installed_modules(services: dict[str, dict[str, Any]]) -> None:
    code = services["worker"]["healthcheck"]["test"][-1]
    for module in re.findall(r"import ([\w, ]+?);", code)[0].split(","):
        assert importlib.util.find_spec(module.strip()), module
    assert "XAI_REDIS_URL" in code


def test_every_service_has_an_image(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        assert service.get("image") or service.get("build"), name
        if "build" not in service:
            image = service["image"]
            assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), f"{name}: pin a tag"


def test_volumes_are_declared_and_binds_exist(raw: dict[str, Any], services: dict[str, dict[str, Any]]) -> None:
    declared = set(raw.get("volumes") or {})
    used = set()
    for name, service in services.items():
        for source, _, _ in mounts(service):
            if is_bind(source):
                assert (ROOT / source).exists(), f"{name}: {source} is not in the repository"
            else:
                assert source in declared, f"{name}: volume {source} is not declared"
                used.add(source)
    assert used == declared, "declared but unused volumes"


def test_depends_on(services: dict[str, dict[str, Any]]) -> None:
    for name, service in services.items():
        depends = service.get("depends_on") or {}
        for target, spec in (depends.items() if isinstance(depends, dict) else ((d, {}) for d in depends)):
            assert target in services and target != name, f"{name} depends on unknown {target}"
            condition = spec.get("condition", "service_started")
            assert condition in CONDITIONS, f"{name} -> {target}: {condition}"
            if condition == "service_healthy":
                assert "healthcheck" in services[target], f"{target} has no healthcheck to wait for"
            if condition == "service_completed_successfully":
                assert services[target].get("restart", "no") == "no", f"{target} must be a one-shot"
    for name in (*XAI_SERVICES, "modelserver"):
        assert services[name]["depends_on"]["models-init"]["condition"] == "service_completed_successfully"
    for name in XAI_SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


# -- compose: the model server and its init ---------------------------------------------------------
def init_script(service: dict[str, Any]) -> str:
    command = command_of(service)
    assert command[0] in ("bash", "sh") and command[1].startswith("-") and "c" in command[1]
    return command[2]


def script_args(script: str) -> list[str]:
    for line in script.splitlines():
        words = shlex.split(line)
        if any(w.endswith("mlserver_models.py") for w in words):
            return words
    raise AssertionError("models-init does not run scripts/mlserver_models.py")


def option(args: list[str], name: str) -> str:
    assert name in args, f"models-init passes no {name}"
    return args[args.index(name) + 1]


def test_the_model_server_serves_what_the_remote_bundle_points_at(services: dict[str, dict[str, Any]]) -> None:
    init, server = services["models-init"], services["modelserver"]
    args = script_args(init_script(init))
    assert "--server-settings" in args, "the server's port comes from the settings.json it writes"
    url = urlsplit(option(args, "--server-url"))
    port = int(option(args, "--http-port"))
    assert url.hostname == "modelserver" and url.port == port
    assert port in container_ports(server)
    assert urlsplit(URL.findall(health_test(server))[0]).port == port
    # the folder it writes is the folder the server starts on, through the same volume
    command = command_of(server)
    assert command[:2] == ["mlserver", "start"]
    out_volume = mount_of(init, option(args, "--out"))[0]
    served_volume, served_at, _ = mount_of(server, command[2])
    assert out_volume == served_volume and served_at == command[2] == option(args, "--out")
    # the remote bundle lands, as a bundle folder, in the registry that api and workers read
    bundle = option(args, "--remote-bundle")
    volume, target, _ = mount_of(init, bundle)
    registry = env_of(services["api"])["XAI_MODEL_DIR"]
    assert volume == mount_of(services["api"], registry)[0] and str(Path(bundle).parent) == target


def test_the_model_server_is_the_mlserver_the_tests_pin(services: dict[str, dict[str, Any]]) -> None:
    import ast

    source = (ROOT / "tests" / "remote" / "conftest.py").read_text()
    pins = next(ast.literal_eval(node.value) for node in ast.parse(source).body
                if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", "") == "MLSERVER_PINS")
    version = dict(pin.split("==") for pin in pins)["mlserver"]
    for name in ("modelserver", "models-init"):  # the pickle must match the server's scikit-learn
        assert services[name]["image"] == f"seldonio/mlserver:{version}-sklearn"


def snapshot(folder: Path) -> dict[str, bytes]:
    return {str(f.relative_to(folder)): f.read_bytes() for f in sorted(folder.rglob("*"))
            if f.is_file() and "__pycache__" not in f.parts}


@pytest.fixture(scope="module")
def init_run(services: dict[str, dict[str, Any]], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Run models-init's script here, in a copy of its container's mounts: bind mounts are copies of
    the repository's folders (which stay untouched), volumes empty folders, at the same relative
    places; `python` is this environment's. Returns the folder of each mount target."""
    init = services["models-init"]
    fake = tmp_path_factory.mktemp("models-init")
    where = {}
    for source, target, _ in mounts(init):
        where[target] = fake / target.lstrip("/")
        if is_bind(source):
            shutil.copytree(ROOT / source, where[target])
        else:
            where[target].mkdir(parents=True)
    targets = "|".join(re.escape(t) for t in sorted(where, key=len, reverse=True))
    script = re.sub(rf"(?<![\w./-])({targets})(?=/|\s|$)", lambda m: str(where[m.group(1)]), init_script(init))
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    done = subprocess.run(["bash", "-euc", script], env=env, capture_output=True, text=True, timeout=300,
                          check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    for source, target, read_only in mounts(init):
        if is_bind(source) and read_only:
            assert snapshot(where[target]) == snapshot(ROOT / source), f"models-init wrote into read-only {target}"
    return where


def test_the_init_script_writes_the_server_repository(services: dict[str, dict[str, Any]],
                                                      init_run: dict[str, Path]) -> None:
    command = command_of(services["modelserver"])
    repo = init_run[command[2]]
    settings = json.loads((repo / "settings.json").read_text())
    assert settings["http_port"] in container_ports(services["modelserver"]) and settings["parallel_workers"] == 0
    assert (repo / "breast-cancer-mlp" / "model-settings.json").is_file()


def test_the_init_script_fills_the_registry(services: dict[str, dict[str, Any]], init_run: dict[str, Path]) -> None:
    from explainers.models.registry import ModelRegistry

    registry = ModelRegistry(init_run[env_of(services["api"])["XAI_MODEL_DIR"]], device="cpu")
    shipped = {path.name for path in (ROOT / "models").iterdir() if (path / "model.json").is_file()}
    assert shipped | {"breast-cancer-mlp-remote"} <= set(registry.ids()) and not registry.broken
    remote = registry.manifest("breast-cancer-mlp-remote").remote
    assert remote is not None and remote.url == "http://modelserver:8080"
    assert remote.model_name in {p.name for p in init_run[command_of(services["modelserver"])[2]].iterdir()}


