"""pytest fixtures for the Python integration tests.

`tests/` is put on sys.path, so tests import `harness.fleet`, `harness.runtime_api`, ...
"""

from __future__ import annotations

import sys
import uuid
from pathlib import Path
from typing import Any, Callable, Iterator

import pytest

TESTS_DIR = Path(__file__).resolve().parent
if str(TESTS_DIR) not in sys.path:
    sys.path.insert(0, str(TESTS_DIR))

from harness.aws_proxy import AwsProxy  # noqa: E402
from harness.emulator import EmulatorProcess  # noqa: E402
from harness.fleet import Fleet, seed_cluster  # noqa: E402
from harness.functions import FunctionUnderTest, binary_of  # noqa: E402


@pytest.fixture(scope="session")
def emulator() -> Iterator[EmulatorProcess]:
    """The moto-based emulator (tests/emulator/launcher.py) in a subprocess,
    on a free port, for the whole session. `.url`, `.client(service)`,
    `.env()` (for the Rust binaries), `.reset()`, `.log()`."""
    emu = EmulatorProcess().start()
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def proxy(emulator: EmulatorProcess) -> Iterator[AwsProxy]:
    """A recording, fault-injecting proxy in front of the emulator (harness.aws_proxy).
    Point a function at it with ``emulator.env(AWS_ENDPOINT_URL=proxy.url)``."""
    with AwsProxy(emulator.url) as p:
        yield p


@pytest.fixture
def unique_name() -> Callable[[str], str]:
    """unique_name("cl") -> "cl-1a2b3c4d5e6f": same length suffixes, so no
    name is a substring of another (moto matches some names by substring)."""
    return lambda prefix="t": f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_fleet(emulator: EmulatorProcess) -> Callable[..., Fleet]:
    """make_fleet(instances=3, services=["web"], ...) -> Fleet (see harness.fleet.seed_cluster)."""

    def make(**kwargs: Any) -> Fleet:
        kwargs.setdefault("region", emulator.region)
        return seed_cluster(emulator.url, **kwargs)

    return make


@pytest.fixture
def function_binary() -> Callable[[str], Path]:
    """function_binary("instance-drain") -> path of the built binary; skips the
    test when it hasn't been built (this suite never runs cargo)."""
    return binary_of


@pytest.fixture
def start_function(emulator: EmulatorProcess) -> Iterator[Callable[..., FunctionUnderTest]]:
    """start_function("task-retirement", inbox=..., MAINTENANCE_WINDOW=...) ->
    FunctionUnderTest (harness.functions), stopped after the test."""
    started: list[FunctionUnderTest] = []

    def start(name: str, **options: Any) -> FunctionUnderTest:
        started.append(FunctionUnderTest.start(emulator, name, **options))
        return started[-1]

    yield start
    for fx in started:
        fx.stop()
