"""``module:function`` projects, called in-process with the parameters as keyword arguments."""

from __future__ import annotations

import importlib
import inspect
import sys
from typing import Any

from adapters.base import ProjectAdapter
from orchestrator.errors import ConfigurationError


def load_attribute(root: str, entry: str, project: str) -> Any:
    """Import ``module:attr`` from the project folder ``root``."""
    module_name, _, attr = entry.partition(":")
    if not attr:
        raise ConfigurationError(f"project '{project}': entry '{entry}' must look like module:function")
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        raise ConfigurationError(f"project '{project}': cannot import '{module_name}' from {root} ({exc}); "
                                 f"fix 'entry' or 'path'") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ConfigurationError(f"project '{project}': module '{module_name}' has no '{attr}'; "
                                 f"fix 'entry'") from None


class CallableAdapter(ProjectAdapter):
    def run(self, params: dict[str, Any]) -> Any:
        func = load_attribute(str(self.root), self.spec.entry or "", self.spec.name)
        sig = inspect.signature(func)
        if "params" in sig.parameters and len(sig.parameters) == 1:
            return func(params)
        try:
            sig.bind(**params)
        except TypeError as exc:
            raise ConfigurationError(f"project '{self.spec.name}': {self.spec.entry} does not accept "
                                     f"{sorted(params)} ({exc}); align the sweep's parameters with its "
                                     f"signature") from exc
        return func(**params)
