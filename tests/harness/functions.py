"""The one way to start a function under test, in every suite, the demos and the bench:
the real binary under a Lambda Runtime API (harness.runtime_api), fed the way its trigger
feeds it (its SQS queue with a DLQ, or asynchronous invocation), publishing to an inbox,
talking to AWS through ``endpoint`` (the emulator, or an AwsProxy in front of it).

    fx = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url, DRAIN_POLL_SECONDS="5")
    fx.send(event); fx.check()             # on its queue; Lambda takes a batch
    fx.invoke(event)                       # one direct invocation
    outcome = fx.deliver(event)            # queue + pump, or async invoke with retries
    fx.inbox.read()                        # its notifications
    other = fx.another(MAINTENANCE_WINDOW="...")   # a second process: same queue and inbox
    fx.stop()                              # or: with FunctionUnderTest.start(...) as fx:

In pytest, the ``start_function`` fixture (tests/conftest.py) starts one and stops it
after the test.

Defaults per function (``SQS_FED``, ``DEFAULT_ENV``) are the template's wiring: the queue
variable of the SQS-fed ones, ``DRAIN_POLL_SECONDS`` at its minimum (the emulator skips the
delays of a queue tagged ``emulator:skip-delays``).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .delivery import Delivery, FunctionQueue, deliver_async
from .emulator import find_function_binary
from .notifications import Inbox
from .runtime_api import InvokeResult, LambdaProcess
from .sqs_pump import BatchResult

SQS_FED = {"instance-drain": "DRAIN_QUEUE_URL", "task-retirement": "RETIREMENT_QUEUE_URL"}
ASYNC = ("ami-rollout", "guardduty-responder")
ALL = (*SQS_FED, *ASYNC)
DEFAULT_ENV = {"instance-drain": {"DRAIN_POLL_SECONDS": "5"}}  # the minimum; the queue skips the delays
SKIP_DELAYS = {"emulator:skip-delays": "true"}


def binary_of(name: str) -> Path:
    """The built binary of ``name``; skips the test (raises, outside pytest) when it isn't."""
    binary = find_function_binary(name)
    if binary is None:
        message = f"{name} is not built (cargo build -p {name}, or set ECS_AUTOPILOT_BIN_DIR)"
        if "pytest" not in sys.modules:  # the demos and the bench
            raise RuntimeError(message)
        import pytest

        pytest.skip(message)
    return binary


@dataclass
class FunctionUnderTest:
    name: str
    fn: LambdaProcess
    inbox: Inbox | None  # None when given a bare topic (nobody reads it)
    queue: FunctionQueue | None  # SQS-fed functions only
    env: dict[str, str]  # the variables it was started with (the emulator's included)

    @classmethod
    def start(
        cls,
        emulator: Any,
        name: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        inbox: Inbox | None = None,
        topic: str | None = None,
        queue: FunctionQueue | None = None,
        max_receive: int | None = 2,
        skip_delays: bool = True,
        binary: str | os.PathLike[str] | None = None,
        args: list[str] | None = None,
        timeout: float = 120.0,
        start: bool = True,
        **extra: str,
    ) -> "FunctionUnderTest":
        """``inbox``/``queue``: share those of another process (else new ones in
        ``region``); ``topic``: publish to a bare topic instead of an inbox.
        ``max_receive``: receives before the DLQ (None: no DLQ); ``skip_delays``: the
        emulator hands delayed messages over at once. ``binary``/``args``: run something
        else as this function (the bench's Python baseline). ``extra``: more variables."""
        binary = binary or binary_of(name)
        region = region or emulator.region
        if topic is None:
            inbox = inbox or Inbox.create(emulator, prefix=f"{name[:8]}-notify", region=region)
            topic = inbox.topic_arn
        env = {"NOTIFY_TOPIC_ARN": topic, "AWS_REGION": region, "RUST_LOG": "info", **DEFAULT_ENV.get(name, {})}
        if name in SQS_FED and queue is None and SQS_FED[name] not in extra:
            queue = FunctionQueue.create(emulator.client("sqs", region), name[:8], max_receive=max_receive,
                                         tags=SKIP_DELAYS if skip_delays else None)
        if queue is not None:
            env[SQS_FED[name]] = queue.url
        if endpoint:
            env["AWS_ENDPOINT_URL"] = endpoint
        env = emulator.env(**{**env, **extra})
        fn = LambdaProcess(binary, env=env, region=region, timeout=timeout, args=args, function_name=name, start=start)
        return cls(name, fn, inbox, queue, env)

    def another(self, **extra: str) -> "FunctionUnderTest":
        """A second process of this function on the same queue and inbox, ``extra``
        variables changed."""
        fn = LambdaProcess(self.fn.binary_path, env={**self.env, **extra}, region=self.fn.region,
                           timeout=self.fn.timeout, args=self.fn.args, function_name=self.name)
        return FunctionUnderTest(self.name, fn, self.inbox, self.queue, fn.user_env)

    @property
    def sqs_fed(self) -> bool:
        return self.queue is not None

    # -- feeding it ----------------------------------------------------------

    def invoke(self, event: Any, timeout: float | None = None) -> InvokeResult:
        return self.fn.invoke(event, timeout=timeout)

    def send(self, event: Any) -> str:
        """Puts ``event`` (a dict, or a raw body) on the function's queue."""
        assert self.queue is not None, f"{self.name} has no queue"
        return self.queue.send(event)

    def check(self, times: int = 1, **pump: Any) -> list[BatchResult]:
        """Lets Lambda take up to ``times`` batches from the queue (harness.sqs_pump)."""
        assert self.queue is not None, f"{self.name} has no queue"
        return self.queue.pump(self.fn, times, **pump)

    def deliver(self, event: Any, max_batches: int = 10) -> Delivery:
        """The event the way its trigger brings it: through the queue, or invoked async."""
        if self.queue is None:
            return deliver_async(self.fn, event)
        self.queue.send(event)
        return self.queue.deliver(self.fn, max_batches=max_batches)

    def queued(self) -> int:
        assert self.queue is not None, f"{self.name} has no queue"
        return self.queue.queued()

    def dead_letters(self) -> list[dict[str, Any]]:
        assert self.queue is not None, f"{self.name} has no queue"
        return self.queue.dead_letters()

    # -- its life ------------------------------------------------------------

    def stop(self) -> None:
        self.fn.stop()

    def __enter__(self) -> "FunctionUnderTest":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def panicked(self) -> bool:
        return any("panicked" in line for line in self.fn.stderr_lines + self.fn.stdout_lines)

