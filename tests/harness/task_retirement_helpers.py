"""Helpers for the task-retirement tests and demo: what a retirement changed on services
and hosts (their events are in harness.events).

    deployment_ids(fleet.ecs, fleet.cluster_name, "web")     # a redeploy adds one
    service_tags(fleet.ecs, fleet.cluster_name, "web")       # the handled marker
"""

from __future__ import annotations

from typing import Any


def deployment_ids(ecs: Any, cluster: str, service: str) -> list[str]:
    svc = ecs.describe_services(cluster=cluster, services=[service])["services"][0]
    return [d["id"] for d in svc.get("deployments", [])]


def service_tags(ecs: Any, cluster: str, service: str) -> dict[str, str]:
    svc = ecs.describe_services(cluster=cluster, services=[service], include=["TAGS"])["services"][0]
    return {t["key"]: t["value"] for t in svc.get("tags", [])}


def instance_health(autoscaling: Any, instance_id: str) -> str | None:
    found = autoscaling.describe_auto_scaling_instances(InstanceIds=[instance_id])["AutoScalingInstances"]
    return found[0]["HealthStatus"] if found else None
