"""Package names imported on first use (PEP 562): ``__getattr__ = lazy_exports(__name__, {...})``
in a package's ``__init__`` lets ``from package import name`` work without importing every
module of the package up front (the CLI starts worker processes before its heavy imports).
Standard library only."""
from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports ``exports[name]`` (a module path)
    on first access of ``name`` and caches the value in the package."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        setattr(sys.modules[package], name, value)
        return value

    return __getattr__
