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


# --------------------------------------------------------------------------
# scheduling on parallel workers (make test: pytest-xdist --dist loadgroup
# --no-loadscope-reorder)
# --------------------------------------------------------------------------

# Files whose tests run in one worker, in file order: test_replay.py's least-privilege check
# needs every scenario's calls in its process, made before it.
ONE_WORKER = {"test_replay.py"}

# The longest work first (from `--durations` of make test runs), so no worker starts a
# minutes-long test while the others are finishing. Anything not named here follows in
# collection order. A stale list only costs time: it never skips or changes a test.
LONGEST_FIRST = [
    "test_bench_smoke.py::",
    "test_faults.py::test_every_call_of_the_path_survives_transient_faults_and_dead_letters_persistent_ones[guardduty",
    "test_faults.py::test_every_call_of_the_path_survives_transient_faults_and_dead_letters_persistent_ones[ami-rollout",
    "test_faults.py::test_every_call_of_the_path_survives_transient_faults_and_dead_letters_persistent_ones[",
    "test_replay.py::",
    "test_secrets.py::",
]


def _rank(item: pytest.Item) -> int:
    nodeid = item.nodeid.split("/")[-1]
    return next((i for i, prefix in enumerate(LONGEST_FIRST) if nodeid.startswith(prefix)), len(LONGEST_FIRST))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The longest units of work are handed out first. Sorting is stable, so a file's tests
    keep their order."""
    items.sort(key=_rank)


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """--dist loadgroup's scheduler with the groups this suite needs: each test is its own
    unit of work, except the files of ONE_WORKER, one unit each. (pytest-xdist 3.8 reads
    `xdist_group` marks into a node id that pytest 9 no longer uses, so its own grouping
    silently does nothing here.) Other --dist modes are xdist's."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class OneWorkerFiles(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return path if Path(path).name in ONE_WORKER else nodeid

    return OneWorkerFiles(config, log)
