"""The method registry: a decorator adds a method; everything else reads from here."""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

from explainers.errors import UnknownMethod

if TYPE_CHECKING:
    from explainers.base import Explainer

_METHODS: dict[str, type["Explainer"]] = {}
E = TypeVar("E", bound="type[Explainer]")


def register(cls: E) -> E:
    """Class decorator: register an explainer under its `name`."""
    name = cls.name
    if name in _METHODS and _METHODS[name] is not cls:
        raise ValueError(f"method {name!r} is registered twice")
    _METHODS[name] = cls
    return cls


def get_method(name: str) -> type["Explainer"]:
    _load()
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownMethod(f"unknown method {name!r}", details={"known": sorted(_METHODS)}) from None


def all_methods() -> dict[str, type["Explainer"]]:
    _load()
    return dict(sorted(_METHODS.items()))


def _load() -> None:
    import explainers.methods  # noqa: F401  (the explicit import list registers every method)
