"""Shared fixtures: one embedded cloud per test session with both stacks deployed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from earlyexit.local import Cloud, Stack, embedded_cloud


@pytest.fixture(scope="session")
def cloud() -> Iterator[Cloud]:
    with embedded_cloud() as embedded:
        yield embedded


@pytest.fixture(scope="session")
def sfn(cloud: Cloud):
    return cloud.client("stepfunctions")


@pytest.fixture(scope="session")
def either_or(cloud: Cloud) -> Stack:
    return cloud.deploy("either-or", stack_name="earlyexit-either-or")


@pytest.fixture(scope="session")
def quorum(cloud: Cloud) -> Stack:
    return cloud.deploy("quorum", stack_name="earlyexit-quorum")
