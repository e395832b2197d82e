"""The engine's shared runtime: what the fixes and speed-ups use, importing none of them.

:mod:`~earlyexit.engine.runtime.backend` (the backend, the seam every execution fix relies on),
:mod:`~earlyexit.engine.runtime.execution` and :mod:`~earlyexit.engine.runtime.environment` (the
engine's execution, worker and evaluation environment), :mod:`~earlyexit.engine.runtime.tokens`,
:mod:`~earlyexit.engine.runtime.stopping`, :mod:`~earlyexit.engine.runtime.faults` and
:mod:`~earlyexit.engine.runtime.mock_config`, :mod:`~earlyexit.engine.runtime.services` (error
names), :mod:`~earlyexit.engine.runtime.jsonata`, :mod:`~earlyexit.engine.runtime.functions`
(in-process Lambda), :mod:`~earlyexit.engine.runtime.definitions` (the verdict on definitions),
:mod:`~earlyexit.engine.runtime.validation`, :mod:`~earlyexit.engine.runtime.encoding` and
:mod:`~earlyexit.engine.runtime.histories` (responses), :mod:`~earlyexit.engine.runtime.waits`.
"""
