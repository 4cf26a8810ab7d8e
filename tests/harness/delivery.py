"""How an event reaches a function and where it ends when the function keeps failing.

    queue = FunctionQueue.create(emulator.client("sqs"), "drain", max_receive=2)
    queue.send(event)
    outcome = queue.deliver(fn)            # SQS event source mapping, until the queue is empty
    outcome.dead_lettered                  # -> the DLQ after maxReceiveCount

    outcome = deliver_async(fn, event)     # Lambda's async invoke: 2 retries, then the DLQ

Both answer with a :class:`Delivery`, so a test can count lost events the same way for
SQS-fed and async-invoked functions: an event is *lost* when it neither completed nor
reached a dead-letter queue.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

from .runtime_api import InvokeResult, LambdaProcess
from .sqs_pump import BatchResult, drain_queue, pump

ASYNC_RETRIES = 2  # Lambda retries a failed asynchronous invocation twice


@dataclass
class Delivery:
    invocations: list[InvokeResult] = field(default_factory=list)
    failed_attempts: int = 0  # invocations that failed the event (SQS: a batch item failure)
    completed: bool = False
    dead_letters: list[str] = field(default_factory=list)  # bodies that ended in the DLQ

    @property
    def dead_lettered(self) -> bool:
        return bool(self.dead_letters)

    @property
    def lost(self) -> bool:
        return not self.completed and not self.dead_lettered


def deliver_async(fn: LambdaProcess, event: Any, retries: int = ASYNC_RETRIES, timeout: float | None = None) -> Delivery:
    """Lambda's asynchronous invocation: the first try and up to ``retries`` more, then the
    event goes to the function's on-failure destination (modelled as ``dead_letters``)."""
    out = Delivery()
    for _ in range(1 + retries):
        result = fn.invoke(event, timeout=timeout)
        out.invocations.append(result)
        out.failed_attempts += not result.ok
        if result.ok:
            out.completed = True
            return out
    out.dead_letters.append(event if isinstance(event, str) else json.dumps(event))
    return out


@dataclass
class FunctionQueue:
    """A function's SQS queue with a dead-letter queue after ``max_receive`` receives."""

    sqs: Any
    url: str
    dlq_url: str | None

    @classmethod
    def create(cls, sqs: Any, prefix: str, max_receive: int | None = 2,
               tags: dict[str, str] | None = None) -> "FunctionQueue":
        """``max_receive``: receives before the DLQ takes a message; None: no DLQ (a
        failing message comes back until it is deleted)."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        attributes, dlq = {}, None
        if max_receive is not None:
            dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receive)})
        url = sqs.create_queue(QueueName=name, Attributes=attributes, tags=tags or {})["QueueUrl"]
        return cls(sqs, url, dlq)

    def send(self, event: Any) -> str:
        body = event if isinstance(event, str) else json.dumps(event)
        return self.sqs.send_message(QueueUrl=self.url, MessageBody=body)["MessageId"]

    def _count(self, *kinds: str) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url, AttributeNames=[f"ApproximateNumberOfMessages{k}" for k in kinds])["Attributes"]
        return sum(int(v) for v in attrs.values())

    def queued(self) -> int:
        """Messages waiting, visible or delayed (a short delay may have run out by the time
        a test looks)."""
        return self._count("", "Delayed")

    def delayed(self) -> int:
        return self._count("Delayed")

    def in_flight(self) -> int:
        """Every message still in the queue: waiting, delayed or taken and not deleted."""
        return self._count("", "Delayed", "NotVisible")

    def pump(self, fn: LambdaProcess, max_batches: int = 10, **kwargs: Any) -> list[BatchResult]:
        """Lambda's event source mapping takes up to ``max_batches`` batches (harness.sqs_pump)."""
        return pump(self.sqs, self.url, fn, max_batches=max_batches, **kwargs)

    def dead_letters(self) -> list[dict[str, Any]]:
        """What the DLQ holds now (received, not deleted)."""
        if self.dlq_url is None:
            return []
        return self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10).get("Messages", [])

    def deliver(self, fn: LambdaProcess, max_batches: int = 10, invoke_timeout: float | None = None) -> Delivery:
        """Pumps the queue into ``fn`` until it is empty (or ``max_batches``), then reads the
        DLQ. Completed means nothing is left in either queue."""
        out = Delivery()
        for batch in self.pump(fn, max_batches, invoke_timeout=invoke_timeout):
            out.invocations.append(batch.invoke)
            out.failed_attempts += bool(batch.failed_ids)
        out.dead_letters = [m["Body"] for m in drain_queue(self.sqs, self.dlq_url)] if self.dlq_url else []
        out.completed = not out.dead_letters and self.in_flight() == 0
        return out
