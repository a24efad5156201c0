"""Lazy package exports (PEP 562): a name is imported from its submodule on first use, so
importing one light module of a package never pulls in torch, diffusers or OpenCV."""

from __future__ import annotations

from collections.abc import Callable
from importlib import import_module
from typing import Any


def lazy_exports(package: str, exports: dict[str, str], namespace: dict[str, Any]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``; ``exports`` maps names to submodule names."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(import_module(f"{package}.{exports[name]}"), name)
        namespace[name] = value  # later look-ups skip this function
        return value

    return __getattr__
