"""Helpers for the instance-drain tests: the function with its own queue (and DLQ) and a
notification inbox, events AWS would send, and what a drain left behind.

    h = start_drain(emulator, binary, DRAIN_POLL_SECONDS="0")
    h.send(fire_lifecycle(emulator.url, fleet, fleet.instances[0]))
    h.check()                       # Lambda takes a batch from the queue
    h.inbox.read()
"""

from __future__ import annotations

import json
import uuid
from datetime import datetime, timezone
from typing import Any

from harness.fleet import ACCOUNT, Fleet, FleetInstance, lifecycle_actions
from harness.notifications import Inbox
from harness.runtime_api import LambdaProcess
from harness.sqs_pump import pump


# DRAIN_POLL_SECONDS is at least 5: the emulator delivers this queue's delayed messages
# at once instead (tests/emulator/launcher.py, instance-drain test bed).
SKIP_DELAYS = {"emulator:skip-delays": "true"}


def advance_clock(endpoint: str, seconds: float) -> dict[str, Any]:
    """Lets time pass for the emulator's lifecycle actions (lapsed hooks take their
    DefaultResult)."""
    from harness.fleet import control

    return control(endpoint, "POST", "/_autopilot/clock", {"advance_seconds": seconds})


def set_agent_connected(fleet: Fleet, instance: str | FleetInstance, connected: bool) -> dict[str, Any]:
    from harness.fleet import control

    instance_id = instance.ec2_instance_id if isinstance(instance, FleetInstance) else instance
    return control(fleet.endpoint, "POST", "/_autopilot/container-instance",
                   {"region": fleet.region, "cluster": fleet.cluster_name, "instance_id": instance_id,
                    "agent_connected": connected})


def set_status_checks(fleet: Fleet, instance: str | FleetInstance, *, instance_status: str | None = None,
                      system_status: str | None = None) -> dict[str, Any]:
    """What EC2's status checks report for a running host (``impaired``, ``ok``, ...)."""
    from harness.fleet import control

    instance_id = instance.ec2_instance_id if isinstance(instance, FleetInstance) else instance
    body: dict[str, Any] = {"region": fleet.region, "instance_id": instance_id}
    if instance_status:
        body["instance_status"] = instance_status
    if system_status:
        body["system_status"] = system_status
    return control(fleet.endpoint, "POST", "/_autopilot/instance-status", body)


class Harness:
    """instance-drain running with its queue, DLQ and notification inbox."""

    def __init__(self, fn: LambdaProcess, sqs: Any, queue: str, dlq: str, inbox: Inbox) -> None:
        self.fn, self.sqs, self.queue, self.dlq, self.inbox = fn, sqs, queue, dlq, inbox

    def send(self, event: dict[str, Any]) -> None:
        self.sqs.send_message(QueueUrl=self.queue, MessageBody=json.dumps(event))

    def check(self, times: int = 1) -> list[Any]:
        """Lets Lambda take `times` batches from the queue."""
        return pump(self.sqs, self.queue, self.fn, max_batches=times)

    def queued(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.queue, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed"]
        )["Attributes"]
        return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesDelayed"])

    def dead_letters(self) -> list[dict[str, Any]]:
        return self.sqs.receive_message(QueueUrl=self.dlq, MaxNumberOfMessages=10).get("Messages", [])


def start_drain(emulator: Any, binary: Any, *, endpoint: str | None = None, **env: str) -> Harness:
    """Starts instance-drain with a fresh queue (DLQ after 2 receives) and inbox.
    ``endpoint``: where the function sends its AWS calls (an AwsProxy's url), default
    the emulator. Stop it with ``h.fn.stop()``."""
    sqs = emulator.client("sqs")
    name = f"drain-{uuid.uuid4().hex[:10]}"
    dlq = sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(
        QueueName=name,
        Attributes={"RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": "2"})},
        tags=SKIP_DELAYS,
    )["QueueUrl"]
    inbox = Inbox.create(emulator, "drain-notify")
    variables = {"NOTIFY_TOPIC_ARN": inbox.topic_arn, "DRAIN_QUEUE_URL": queue, "DRAIN_POLL_SECONDS": "5", **env}
    if endpoint:
        variables["AWS_ENDPOINT_URL"] = endpoint
    fn = LambdaProcess(binary, env=emulator.env(**variables))
    return Harness(fn, sqs, queue, dlq, inbox)


def spot_event(instance: str | FleetInstance, region: str = "us-east-1") -> dict[str, Any]:
    """The `EC2 Spot Instance Interruption Warning` EventBridge sends."""
    instance_id = instance.ec2_instance_id if isinstance(instance, FleetInstance) else instance
    return {
        "version": "0", "id": str(uuid.uuid4()), "detail-type": "EC2 Spot Instance Interruption Warning",
        "source": "aws.ec2", "account": ACCOUNT, "time": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region, "resources": [], "detail": {"instance-id": instance_id, "instance-action": "terminate"},
    }


def hook_test_notification(group: str = "g") -> dict[str, Any]:
    """What a hook's test notification looks like on the queue."""
    return {"AccountId": ACCOUNT, "RequestId": "r", "AutoScalingGroupName": group, "Service": "AWS Auto Scaling",
            "Event": "autoscaling:TEST_NOTIFICATION", "Time": "2024-06-12T20:30:00.000Z"}



def ci_status(fleet: Fleet, instance: str | FleetInstance) -> str:
    arn = fleet.container_instance_arn(instance)
    return fleet.ecs.describe_container_instances(cluster=fleet.cluster_name, containerInstances=[arn])[
        "containerInstances"
    ][0]["status"]


def action_of(fleet: Fleet, event: dict[str, Any]) -> dict[str, Any]:
    """The emulator's lifecycle action an event is about."""
    token = event["detail"]["LifecycleActionToken"]
    (action,) = lifecycle_actions(fleet.endpoint, fleet.region, token=token)
    return action
