"""Helpers for the task-retirement tests and demo: AWS Health / rebalance events, a
notification inbox (SQS subscribed to the SNS topic), and the function's own queue.

    inbox = Inbox.create(emulator)
    queue = own_queue(emulator)
    with LambdaProcess(binary, env=retirement_env(emulator, inbox, queue)) as fn:
        fn.invoke(ecs_retirement_event([f"{cluster}|web"], starts_in=timedelta(days=7)))
    notes = inbox.read()
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from typing import Any

ACCOUNT = "123456789012"
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]


def rfc1123(t: datetime) -> str:
    """AWS Health's time format: `Wed, 16 Aug 2023 23:18:51 GMT`."""
    return format_datetime(t.astimezone(timezone.utc).replace(microsecond=0), usegmt=True)


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def health_event(
    service: str,
    code: str,
    entities: list[str],
    *,
    starts_in: timedelta = timedelta(days=7),
    status: str = "upcoming",
    event_arn: str | None = None,
    resources: list[str] | None = None,
    updated_at: datetime | None = None,
    region: str = "us-east-1",
) -> dict[str, Any]:
    """An `AWS Health Event` as EventBridge delivers it (see tests/fixtures/retirement-*.json)."""
    now = datetime.now(timezone.utc)
    event_arn = event_arn or f"arn:aws:health:{region}::event/{service}/{code}/{code}_{uuid.uuid4().hex[:12]}"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "AWS Health Event",
        "source": "aws.health",
        "account": ACCOUNT,
        "time": iso(now),
        "region": region,
        "resources": list(entities if resources is None else resources),
        "detail": {
            "eventArn": event_arn,
            "service": service,
            "eventTypeCode": code,
            "eventTypeCategory": "scheduledChange",
            "eventScopeCode": "ACCOUNT_SPECIFIC",
            "communicationId": uuid.uuid4().hex,
            "startTime": rfc1123(now + starts_in),
            "lastUpdatedTime": rfc1123(updated_at or now),
            "statusCode": status,
            "eventRegion": region,
            "eventDescription": [{"language": "en_US", "latestDescription": f"{code} notice for testing."}],
            "affectedEntities": [{"entityValue": e, "tags": {"team": "test"}} for e in entities],
        },
    }


def ecs_retirement_event(entities: list[str], **kwargs: Any) -> dict[str, Any]:
    return health_event("ECS", "AWS_ECS_TASK_PATCHING_RETIREMENT", entities, **kwargs)


def ec2_retirement_event(instance_ids: list[str], code: str = "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED", **kwargs: Any) -> dict[str, Any]:
    return health_event("EC2", code, instance_ids, **kwargs)


def rebalance_event(instance_id: str, region: str = "us-east-1") -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "EC2 Instance Rebalance Recommendation",
        "source": "aws.ec2",
        "account": ACCOUNT,
        "time": iso(datetime.now(timezone.utc)),
        "region": region,
        "resources": [f"arn:aws:ec2:{region}:{ACCOUNT}:instance/{instance_id}"],
        "detail": {"instance-id": instance_id},
    }


def window_at(start: datetime, minutes: int = 60) -> str:
    """A MAINTENANCE_WINDOW opening at `start` (minute precision, UTC) on that weekday."""
    start = start.astimezone(timezone.utc)
    end = start + timedelta(minutes=minutes)
    return f"{DAYS[start.weekday()]} {start:%H:%M}-{end:%H:%M}"


ALWAYS_OPEN_WINDOW = "Mon-Sun 00:00-24:00"


def closed_window(hours_from_now: int = 3) -> str:
    """A one-hour window that is closed now and opens in `hours_from_now` hours."""
    return window_at(datetime.now(timezone.utc) + timedelta(hours=hours_from_now))


from harness.notifications import Inbox, Notification  # noqa: E402,F401


# --------------------------------------------------------------------------
# the function's own queue and environment
# --------------------------------------------------------------------------


def own_queue(emulator: Any, prefix: str = "retirement") -> str:
    return emulator.client("sqs").create_queue(QueueName=f"{prefix}-{uuid.uuid4().hex[:12]}")["QueueUrl"]


def delayed_messages(emulator: Any, queue_url: str) -> int:
    attrs = emulator.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesDelayed"])


def queued_messages(emulator: Any, queue_url: str) -> int:
    """Messages waiting in the queue, delayed or already visible (a short delay may have
    run out by the time the test looks)."""
    attrs = emulator.client("sqs").get_queue_attributes(
        QueueUrl=queue_url, AttributeNames=["ApproximateNumberOfMessagesDelayed", "ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessagesDelayed"]) + int(attrs["ApproximateNumberOfMessages"])


def retirement_env(emulator: Any, inbox: Inbox, queue_url: str, **extra: str) -> dict[str, str]:
    env = {"NOTIFY_TOPIC_ARN": inbox.topic_arn, "RETIREMENT_QUEUE_URL": queue_url, "RUST_LOG": "info"}
    env.update(extra)
    return emulator.env(**env)


def deployment_ids(ecs: Any, cluster: str, service: str) -> list[str]:
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    return [d["id"] for d in svc.get("deployments", [])]


def service_tags(ecs: Any, cluster: str, service: str) -> dict[str, str]:
    svc = ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])["services"][0]
    return {t["key"]: t["value"] for t in svc.get("tags", [])}


def instance_health(autoscaling: Any, instance_id: str) -> str | None:
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return found[0]["HealthStatus"] if found else None
