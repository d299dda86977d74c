"""The method registry: a decorator adds a method; `explainers.methods` imports every method file.

The registry imports no method: `explainers.methods` holds the explicit import list and
answers `all_methods` / `get_method` once every method has registered.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from explainers.errors import UnknownMethod

if TYPE_CHECKING:
    from explainers.method import Method

_METHODS: dict[str, type[Method[Any]]] = {}
E = TypeVar("E", bound="type[Method[Any]]")


def register(cls: E) -> E:
    """Class decorator: register a method (an `Explainer` or a `GlobalExplainer`) under its `name`."""
    name = cls.name
    if name in _METHODS and _METHODS[name] is not cls:
        raise ValueError(f"method {name!r} is registered twice")
    _METHODS[name] = cls
    return cls


def registered() -> dict[str, type[Method[Any]]]:
    """The registered methods (local and global) by name, sorted."""
    return dict(sorted(_METHODS.items()))


def lookup(name: str) -> type[Method[Any]]:
    try:
        return _METHODS[name]
    except KeyError:
        raise UnknownMethod(f"unknown method {name!r}", details={"known": sorted(_METHODS)}) from None
