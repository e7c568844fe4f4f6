"""A module imported on first use: lets a light command (``sanigrid layers``, ``--help``) import a module
whose other functions need geopandas without paying for geopandas itself."""

from __future__ import annotations

import importlib
from typing import Any


class LazyModule:
    """Stands for the module ``name``; the first attribute read imports it (later reads are plain lookups)."""

    def __init__(self, name: str) -> None:
        self._name = name

    def __getattr__(self, attr: str) -> Any:
        module = self.__dict__.get("_module")
        if module is None:  # ``import_module`` on every read costs ~2 µs: a per-row ``pd.NA`` paid it 10⁵ times
            module = self.__dict__["_module"] = importlib.import_module(self._name)
        return getattr(module, attr)
