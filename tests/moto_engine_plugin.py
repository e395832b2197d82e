"""A pytest plugin that runs a test session with the embedded engine's fixes installed.

``python -m pytest -p moto_engine_plugin ...`` (this file importable): the fixes are applied
when the session starts and removed when it ends, as a user of the engine gets them with
``earlyexit.engine.install()``. ``test_moto_suite.py`` runs moto's own Step Functions tests
with it.
"""

from __future__ import annotations

import pytest

from earlyexit import engine


def pytest_sessionstart(session: pytest.Session) -> None:
    engine.install()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if engine.installed():
        engine.uninstall()
