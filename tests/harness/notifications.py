"""Reading what the functions published: an SNS topic with an SQS queue subscribed."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any


# --------------------------------------------------------------------------
# notifications
# --------------------------------------------------------------------------


@dataclass
class Notification:
    subject: str
    title: str
    description: str
    context: dict[str, str]
    attributes: dict[str, str]
    next_steps: list[str] = field(default_factory=list)

    @property
    def action(self) -> str:
        return self.context.get("action", "")

    @property
    def outcome(self) -> str:
        return self.context.get("outcome", "")

    @property
    def group(self) -> str | None:
        return self.context.get("group")

    @property
    def details(self) -> dict[str, Any]:
        return json.loads(self.context.get("details", "{}"))


@dataclass
class Inbox:
    """An SNS topic with an SQS queue subscribed to it."""

    sqs: Any
    topic_arn: str
    queue_url: str

    @classmethod
    def create(cls, emulator: Any, prefix: str = "notify", region: str | None = None) -> "Inbox":
        sns, sqs = emulator.client("sns", region), emulator.client("sqs", region)
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        topic_arn = sns.create_topic(Name=name)["TopicArn"]
        queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
        return cls(sqs, topic_arn, queue_url)

    def read(self, wait: float = 0.5) -> list[Notification]:
        """Every notification published so far (consumed)."""
        out: list[Notification] = []
        deadline = time.monotonic() + wait
        while True:
            resp = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            messages = resp.get("Messages") or []
            for m in messages:
                envelope = json.loads(m["Body"])
                body = json.loads(envelope["Message"])
                out.append(
                    Notification(
                        subject=envelope.get("Subject", ""),
                        title=body["content"]["title"],
                        description=body["content"]["description"],
                        context=body["metadata"]["additionalContext"],
                        attributes={k: v.get("Value") for k, v in (envelope.get("MessageAttributes") or {}).items()},
                        next_steps=list(body["content"].get("nextSteps") or []),
                    )
                )
                self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=m["ReceiptHandle"])
            if not messages and time.monotonic() >= deadline:
                return out
