"""Looking at tasks, and playing the ECS scheduler: moving tasks off DRAINING hosts."""

from __future__ import annotations

import random
from typing import Any, Iterable

from .model import Fleet, FleetInstance
from .seeding import start_service_tasks


def tasks_on(fleet: Fleet, instance: str | FleetInstance, desired_status: str = "RUNNING") -> list[dict[str, Any]]:
    """Described tasks on one instance (EC2 id, container instance ARN/id or FleetInstance)."""
    arns = fleet.ecs.list_tasks(
        cluster=fleet.cluster_name,
        containerInstance=fleet.container_instance_arn(instance),
        desiredStatus=desired_status,
    )["taskArns"]
    return describe_tasks(fleet, arns)


def all_tasks(fleet: Fleet, desired_status: str = "RUNNING") -> list[dict[str, Any]]:
    arns = fleet.ecs.list_tasks(cluster=fleet.cluster_name, desiredStatus=desired_status)["taskArns"]
    return describe_tasks(fleet, arns)


def describe_tasks(fleet: Fleet, arns: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i in range(0, len(arns), 100):
        out += fleet.ecs.describe_tasks(cluster=fleet.cluster_name, tasks=arns[i : i + 100])["tasks"]
    return out


def service_of(task: dict[str, Any]) -> str | None:
    group = task.get("group") or ""
    return group[len("service:") :] if group.startswith("service:") else None


def stop_tasks(
    fleet: Fleet,
    instance: str | FleetInstance | None = None,
    *,
    task_arns: Iterable[str] | None = None,
    service: str | None = None,
    include_standalone: bool = True,
    reason: str = "Task stopped by the test",
) -> list[str]:
    """Stop tasks: the given ARNs, or those RUNNING on ``instance`` (optionally
    of one ``service`` only, optionally sparing standalone tasks)."""
    if task_arns is None:
        tasks = tasks_on(fleet, instance) if instance is not None else all_tasks(fleet)
        selected = []
        for t in tasks:
            svc = service_of(t)
            if service is not None and svc != service:
                continue
            if svc is None and not include_standalone:
                continue
            selected.append(t["taskArn"])
        task_arns = selected
    stopped = []
    for arn in task_arns:
        fleet.ecs.stop_task(cluster=fleet.cluster_name, task=arn, reason=reason)
        stopped.append(arn)
    return stopped


def play_scheduler(fleet: Fleet, *, replace: bool = True, stop_daemons: bool = True, rng: random.Random | None = None) -> dict[str, list[str]]:
    """One pass of what ECS does for DRAINING container instances: stop their
    REPLICA service tasks and (``replace``) start each on an ACTIVE instance;
    once only daemon tasks remain, stop those (``stop_daemons``). Standalone
    tasks are left alone (ECS does not stop them on drain).

    Returns {"stopped": [...], "started": [...]}.
    """
    rng = rng or random.Random(0)
    cis = fleet.container_instances()
    draining = [c["containerInstanceArn"] for c in cis if c["status"] == "DRAINING"]
    active = [c["containerInstanceArn"] for c in cis if c["status"] == "ACTIVE"]
    stopped: list[str] = []
    started: list[str] = []
    for ci in draining:
        tasks = tasks_on(fleet, ci)
        replica = [t for t in tasks if service_of(t) and service_of(t) != fleet.daemon_service]
        for t in replica:
            svc = service_of(t)
            fleet.ecs.stop_task(
                cluster=fleet.cluster_name,
                task=t["taskArn"],
                reason="Task stopped because the container instance is being drained.",
            )
            stopped.append(t["taskArn"])
            if replace and active and svc in fleet.task_definitions:
                target = rng.choice(active)
                started += start_service_tasks(fleet, svc, target, 1)
        if stop_daemons:
            remaining = tasks_on(fleet, ci)
            if all(service_of(t) == fleet.daemon_service for t in remaining):
                for t in remaining:
                    fleet.ecs.stop_task(
                        cluster=fleet.cluster_name,
                        task=t["taskArn"],
                        reason="Task stopped because the container instance is being drained.",
                    )
                    stopped.append(t["taskArn"])
    return {"stopped": stopped, "started": started}


def set_draining(fleet: Fleet, *instances: str | FleetInstance) -> None:
    fleet.ecs.update_container_instances_state(
        cluster=fleet.cluster_name,
        containerInstances=[fleet.container_instance_arn(i) for i in instances],
        status="DRAINING",
    )
