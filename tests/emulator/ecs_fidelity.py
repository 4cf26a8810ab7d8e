"""ECS closer to AWS (skipped with --plain-moto-ecs)."""

from __future__ import annotations

import re
from typing import Any

from moto.core.responses import ActionResult


def _aws_list_tasks(
    self: Any,
    cluster_str: str | None = None,
    container_instance: str | None = None,
    family: str | None = None,
    started_by: str | None = None,
    service_name: str | None = None,
    desiredStatus: str | None = None,
) -> list[Any]:
    """ListTasks as AWS does it: exact cluster match (moto: substring of the
    ARN), exact container instance (ARN or id), serviceName (moto: ignored)
    matched against the task group ``service:NAME``, and desiredStatus
    defaulting to RUNNING (moto: all tasks)."""
    tasks = [t for ts in self.tasks.values() for t in ts.values()]
    if cluster_str:
        cluster = self._get_cluster(cluster_str)
        tasks = [t for t in tasks if t.cluster_arn == cluster.arn]
    if container_instance:
        ci_id = container_instance.split("/")[-1]
        tasks = [
            t
            for t in tasks
            if t.container_instance_arn and t.container_instance_arn.split("/")[-1] == ci_id
        ]
    if family:
        arns = self.list_task_definitions(family)
        tasks = [t for t in tasks if t.task_definition_arn in arns]
    if started_by:
        tasks = [t for t in tasks if t.started_by == started_by]
    if service_name:
        name = service_name.split("/")[-1]
        tasks = [t for t in tasks if t.group == f"service:{name}"]
    wanted = desiredStatus or "RUNNING"
    return [t for t in tasks if t.desired_status == wanted]


def _tasks_named(backend: Any, cluster_str: str, task_strs: list[str]) -> list[Any]:
    """The named cluster's tasks whose id ends one of ``task_strs`` (ids, ARNs of either
    format), as AWS matches them."""
    cluster = backend._get_cluster(cluster_str)
    wanted = {t.split("/")[-1] for t in task_strs}
    return [task for arn, task in backend.tasks.get(cluster.name, {}).items() if arn.split("/")[-1] in wanted]


def _find_task(backend: Any, cluster_str: str, task_str: str) -> Any:
    return next(iter(_tasks_named(backend, cluster_str, [task_str])), None)


def _patch_ecs() -> None:
    from moto.core.utils import utcnow
    from moto.ecs import models as ecs_models

    backend_cls = ecs_models.EC2ContainerServiceBackend
    backend_cls.list_tasks = _aws_list_tasks  # type: ignore[method-assign]

    orig_start = backend_cls.start_task
    orig_stop = backend_cls.stop_task

    def start_task(self: Any, cluster_str: str, *args: Any, **kwargs: Any) -> Any:
        tasks = orig_start(self, cluster_str, *args, **kwargs)
        now = utcnow()
        for task in tasks:
            task.launch_type = task.launch_type or "EC2"
            task.created_at = getattr(task, "created_at", None) or now
            task.started_at = now
            task.pull_started_at = now
            task.pull_stopped_at = now
            task.connectivity = "CONNECTED"
            task.connectivity_at = now
            task.health_status = "UNKNOWN"
        return tasks

    def stop_task(self: Any, cluster_str: str, task_str: str, reason: str) -> Any:
        existing = _find_task(self, cluster_str, task_str)
        if existing is not None and existing.desired_status == "STOPPED":
            # AWS: stopping a stopped task is a no-op (moto would give the
            # container instance its resources back a second time).
            return existing
        task = orig_stop(self, cluster_str, task_str, reason)
        now = utcnow()
        task.stopping_at = now
        task.execution_stopped_at = now
        task.stopped_at = now
        task.stop_code = getattr(task, "stop_code", None) or "UserInitiated"
        return task

    def describe_tasks(self: Any, cluster_str: str, tasks: list[str]) -> list[Any]:
        # AWS: only the named cluster's tasks (moto: any cluster's task whose id is a
        # substring of a requested ARN); the old ARN format (task/<id>) names no cluster.
        self._get_cluster(cluster_str)
        if not tasks:
            raise ecs_models.InvalidParameterException("Tasks cannot be empty.")
        found = _tasks_named(self, cluster_str, tasks)
        for task in found:
            task.advance()
        return found

    backend_cls.start_task = start_task  # type: ignore[method-assign]
    backend_cls.stop_task = stop_task  # type: ignore[method-assign]
    backend_cls.describe_tasks = describe_tasks  # type: ignore[method-assign]

    # AWS applies the cluster query language filter; moto ignores it. The one expression
    # ecs-autopilot sends, `ec2InstanceId == i-...`, is applied here; others still list all.
    from moto.ecs import responses as ecs_responses

    def list_container_instances(self: Any) -> ActionResult:
        cluster_str = self._get_param("cluster", "default")
        arns = self.ecs_backend.list_container_instances(cluster_str, status=self._get_param("status"))
        match = re.fullmatch(r"\s*ec2InstanceId\s*==\s*(\S+)\s*", self._get_param("filter") or "")
        if match:
            cluster = self.ecs_backend.container_instances.get(cluster_str.split("/")[-1], {})
            on_host = {ci.container_instance_arn for ci in cluster.values() if ci.ec2_instance_id == match.group(1)}
            arns = [a for a in arns if a in on_host]
        return ActionResult({"containerInstanceArns": arns})

    ecs_responses.EC2ContainerServiceResponse.list_container_instances = list_container_instances  # type: ignore[method-assign]

    # Counts derived from the tasks the test placed (moto: fixed numbers, the
    # cluster's runningTasksCount even goes negative after StopTask).
    def _ecs_backend_for(obj: Any) -> Any:
        account = obj.arn.split(":")[4] if hasattr(obj, "arn") else obj._account_id
        return ecs_models.ecs_backends[account][obj.region_name]

    def _running(backend: Any, cluster_name: str, group: str | None = None) -> int:
        return sum(
            1
            for t in backend.tasks.get(cluster_name, {}).values()
            if t.desired_status == "RUNNING" and (group is None or t.group == group)
        )

    def _ignore(self: Any, value: Any) -> None:
        pass

    cluster_cls = ecs_models.Cluster
    cluster_cls.running_tasks_count = property(  # type: ignore[assignment]
        lambda self: _running(_ecs_backend_for(self), self.name), _ignore
    )
    cluster_cls.pending_tasks_count = property(lambda self: 0, _ignore)  # type: ignore[assignment]
    cluster_cls.active_services_count = property(  # type: ignore[assignment]
        lambda self: sum(
            1
            for s in _ecs_backend_for(self).services.values()
            if s.cluster_name == self.name and s.status == "ACTIVE"
        ),
        _ignore,
    )
    cluster_cls.registered_container_instances_count = property(  # type: ignore[assignment]
        lambda self: len(_ecs_backend_for(self).container_instances.get(self.name, {})), _ignore
    )

    service_cls = ecs_models.Service

    def _get_desired(self: Any) -> int:
        if getattr(self, "scheduling_strategy", "REPLICA") == "DAEMON":
            # AWS: one per ACTIVE container instance (moto: 0)
            backend = self._backend
            return sum(
                1
                for ci in backend.container_instances.get(self.cluster_name, {}).values()
                if ci.status == "ACTIVE"
            )
        return self._autopilot_desired

    def _set_desired(self: Any, value: Any) -> None:
        self._autopilot_desired = value

    service_cls.desired_count = property(_get_desired, _set_desired)  # type: ignore[assignment]
    service_cls.running_count = property(  # type: ignore[assignment]
        lambda self: _running(self._backend, self.cluster_name, f"service:{self.name}"), _ignore
    )
    service_cls.pending_count = property(  # type: ignore[assignment]
        lambda self: max(0, (self.desired_count or 0) - self.running_count),
        _ignore,
    )
