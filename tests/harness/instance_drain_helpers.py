"""Helpers for the instance-drain tests: the emulator's clock and host facts a drain
reads (agent connection, status checks), and what a drain left behind.

    h = FunctionUnderTest.start(emulator, "instance-drain")     # harness.functions
    h.send(fire_lifecycle(emulator.url, fleet, fleet.instances[0]))
    h.check()                       # Lambda takes a batch from the queue
    set_agent_connected(fleet, fleet.instances[1], False)
"""

from __future__ import annotations

from typing import Any

from harness.fleet import Fleet, FleetInstance, control, lifecycle_actions


def advance_clock(endpoint: str, seconds: float) -> dict[str, Any]:
    """Lets time pass for the emulator's lifecycle actions (lapsed hooks take their
    DefaultResult)."""
    return control(endpoint, "POST", "/_autopilot/clock", {"advance_seconds": seconds})


def set_agent_connected(fleet: Fleet, instance: str | FleetInstance, connected: bool) -> dict[str, Any]:
    instance_id = instance.ec2_instance_id if isinstance(instance, FleetInstance) else instance
    return control(fleet.endpoint, "POST", "/_autopilot/container-instance",
                   {"region": fleet.region, "cluster": fleet.cluster_name, "instance_id": instance_id,
                    "agent_connected": connected})


def set_status_checks(fleet: Fleet, instance: str | FleetInstance, *, instance_status: str | None = None,
                      system_status: str | None = None) -> dict[str, Any]:
    """What EC2's status checks report for a running host (``impaired``, ``ok``, ...)."""
    instance_id = instance.ec2_instance_id if isinstance(instance, FleetInstance) else instance
    body: dict[str, Any] = {"region": fleet.region, "instance_id": instance_id}
    if instance_status:
        body["instance_status"] = instance_status
    if system_status:
        body["system_status"] = system_status
    return control(fleet.endpoint, "POST", "/_autopilot/instance-status", body)


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
