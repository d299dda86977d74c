"""Dependencies shared by the routes. The service is typed by protocol: no torch import here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Protocol

from fastapi import Depends, Request

from app.jobs import JobClient
from app.keys import Caller
from app.metrics import Metrics
from app.settings import Settings
from app.waiting import Waiter
from explainers.types import Target


class Submission(Protocol):
    job_id: str | None
    result: dict[str, Any] | None
    joined: bool


class Service(Protocol):
    waiter: Waiter | None

    def methods_info(self) -> list[dict[str, Any]]: ...
    def model_info(self, model_id: str) -> dict[str, Any]: ...
    def models_info(self) -> list[dict[str, Any]]: ...
    def readiness(self) -> dict[str, Any]: ...
    def predict(self, model_id: str, payload: Mapping[str, Any], top_k: int = 5) -> dict[str, Any]: ...
    def sample(self, model_id: str, index: int = 0) -> dict[str, Any]: ...
    def execution(self, method: str) -> str: ...
    def job_client(self) -> JobClient: ...
    def workers_alive(self) -> int: ...
    def submit(self, caller: Caller, method: str, model_id: str, payload: Mapping[str, Any], *,
               target: Target, params: Mapping[str, Any] | None, output: Mapping[str, Any],
               top_k: int, region: Mapping[str, Any] | None = None) -> Submission: ...
    def submit_patterns(self, caller: Caller, model_id: str, inputs: list[dict[str, Any]] | None) -> str: ...
    def explain_inputs(self, method: str, model_id: str, payloads: list[dict[str, Any]], *,
                       target: int | str | None = None, params: Mapping[str, Any] | None = None,
                       output: Mapping[str, Any] | None = None, top_k: int = 5,
                       regions: list[dict[str, Any] | None] | None = None) -> dict[str, Any]: ...
    def submit_inputs(self, caller: Caller, method: str, model_id: str, payloads: list[dict[str, Any]], *,
                      target: int | str | None, params: Mapping[str, Any] | None, output: Mapping[str, Any],
                      top_k: int, regions: list[dict[str, Any] | None] | None = None) -> Submission: ...
    def explain_many(self, methods: list[str], model_id: str, payload: Mapping[str, Any], *,
                     target: Target, params: Mapping[str, Mapping[str, Any]], output: Mapping[str, Any],
                     top_k: int, top_percent: float, region: Mapping[str, Any] | None = None) -> dict[str, Any]: ...
    def submit_multi(self, caller: Caller, methods: list[str], model_id: str, payload: Mapping[str, Any], *,
                     target: Target, params: Mapping[str, Mapping[str, Any]], output: Mapping[str, Any],
                     top_k: int, top_percent: float, region: Mapping[str, Any] | None = None) -> str: ...
    def submit_sanity(self, caller: Caller, model_id: str, body: Mapping[str, Any]) -> str: ...
    def submit_evaluation(self, caller: Caller, model_id: str, body: Mapping[str, Any]) -> str: ...
    def submit_global(self, caller: Caller, method: str, model_id: str, body: Mapping[str, Any]) -> str: ...
    def explain(self, method: str, model_id: str, payload: Mapping[str, Any], *, target: Target = None,
                params: Mapping[str, Any] | None = None, output: Mapping[str, Any] | None = None,
                top_k: int = 5, region: Mapping[str, Any] | None = None) -> dict[str, Any]: ...


def _service(request: Request) -> Service:
    return request.app.state.service  # type: ignore[no-any-return]


def _settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def _metrics(request: Request) -> Metrics:
    return request.app.state.metrics  # type: ignore[no-any-return]


ServiceDep = Annotated[Service, Depends(_service)]
SettingsDep = Annotated[Settings, Depends(_settings)]
MetricsDep = Annotated[Metrics, Depends(_metrics)]
