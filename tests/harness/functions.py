"""The four functions as the fault, bad-input and secrets suites drive them: how each is
fed (its SQS queue with a DLQ, or asynchronous invocation) and the environment it needs,
talking to AWS through ``endpoint`` (the emulator, or an AwsProxy in front of it).

    fx = FunctionUnderTest.start(emulator, "instance-drain", endpoint=proxy.url)
    outcome = fx.deliver(event)            # queue + pump, or async invoke with retries
    fx.inbox.read()                        # its notifications
    fx.stop()
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .delivery import Delivery, FunctionQueue, deliver_async
from .emulator import find_function_binary
from .notifications import Inbox
from .runtime_api import LambdaProcess

SQS_FED = {"instance-drain": "DRAIN_QUEUE_URL", "task-retirement": "RETIREMENT_QUEUE_URL"}
ASYNC = ("ami-rollout", "guardduty-responder")
ALL = (*SQS_FED, *ASYNC)


@dataclass
class FunctionUnderTest:
    name: str
    fn: LambdaProcess
    inbox: Inbox
    queue: FunctionQueue | None  # SQS-fed functions only

    @classmethod
    def start(
        cls,
        emulator: Any,
        name: str,
        *,
        endpoint: str | None = None,
        region: str | None = None,
        max_receive: int = 2,
        **extra: str,
    ) -> "FunctionUnderTest":
        binary = find_function_binary(name)
        if binary is None:
            import pytest

            pytest.skip(f"{name} is not built")
        region = region or emulator.region
        inbox = Inbox.create(emulator, prefix=f"{name[:8]}-notify", region=region)
        env = {"NOTIFY_TOPIC_ARN": inbox.topic_arn, "AWS_REGION": region, "RUST_LOG": "info"}
        queue = None
        if name in SQS_FED:
            queue = FunctionQueue.create(emulator.client("sqs", region), name[:8], max_receive=max_receive,
                                         tags={"emulator:skip-delays": "true"})
            env[SQS_FED[name]] = queue.url
        if name == "instance-drain":
            env["DRAIN_POLL_SECONDS"] = "5"  # the minimum; the queue skips the delays
        if endpoint:
            env["AWS_ENDPOINT_URL"] = endpoint
        env.update(extra)
        fn = LambdaProcess(binary, env=emulator.env(**env), region=region, timeout=120)
        return cls(name, fn, inbox, queue)

    @property
    def sqs_fed(self) -> bool:
        return self.queue is not None

    def deliver(self, event: Any, max_batches: int = 10) -> Delivery:
        """The event the way its trigger brings it: through the queue, or invoked async."""
        if self.queue is None:
            return deliver_async(self.fn, event)
        self.queue.send(event)
        return self.queue.deliver(self.fn, max_batches=max_batches)

    def stop(self) -> None:
        self.fn.stop()

    def panicked(self) -> bool:
        return any("panicked" in line for line in self.fn.stderr_lines + self.fn.stdout_lines)
