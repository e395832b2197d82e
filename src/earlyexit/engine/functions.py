"""The in-process Lambda runtime under its former name, for :mod:`earlyexit.gateway`, :mod:`earlyexit.local` and
:mod:`earlyexit.server` (it lives in :mod:`earlyexit.engine.runtime.functions`)."""

from __future__ import annotations

from earlyexit.engine.runtime.functions import FunctionError, function_endpoint, invoke_function, set_function_endpoint

__all__ = ["FunctionError", "function_endpoint", "invoke_function", "set_function_endpoint"]
