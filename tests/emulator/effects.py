"""What completing a lifecycle action does to groups, EC2 and ECS."""

from __future__ import annotations

from typing import Any

from moto.autoscaling.models import AutoScalingBackend

from .common import OPTIONS, TERMINATING
from .state import LifecycleAction


def _instance_state(group: Any, instance_id: str) -> Any:
    for state in group.instance_states:
        if state.instance.id == instance_id:
            return state
    return None


def _ecs_cleanup(account: str, region: str, instance_ids: list[str]) -> None:
    """What ECS does once an EC2 instance is gone: its tasks stop and its
    container instance leaves the cluster (moto has no INACTIVE state that
    ListContainerInstances hides, so it is deregistered outright)."""
    if not OPTIONS["ecs_cleanup"] or not instance_ids:
        return
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[account][region]
    for cluster_name, instances in list(ecs.container_instances.items()):
        if cluster_name not in ecs.clusters:
            continue
        for ci_id, ci in list(instances.items()):
            if ci.ec2_instance_id not in instance_ids:
                continue
            arn = ci.container_instance_arn
            for task_arn, task in list(ecs.tasks.get(cluster_name, {}).items()):
                if task.container_instance_arn == arn and task.desired_status != "STOPPED":
                    task.stop_code = "TerminationNotice"
                    ecs.stop_task(
                        cluster_name,
                        task_arn,
                        f"Host EC2 (instance {ci.ec2_instance_id}) terminated.",
                    )
            ci.agent_connected = False
            ci.running_tasks_count = 0
            ecs.deregister_container_instance(cluster_name, ci_id, True)
            ecs.container_instances.get("orphaned", {}).pop(ci_id, None)


def _remove_and_terminate(backend: AutoScalingBackend, group: Any, instance_ids: list[str]) -> None:
    """Take instances out of the group and terminate them without letting moto
    launch replacements (moto's ASG only reacts to the EC2 TerminateInstances
    *API*, not to the backend call used here)."""
    group.instance_states = [s for s in group.instance_states if s.instance.id not in instance_ids]
    existing = []
    for iid in instance_ids:
        try:
            backend.ec2_backend.get_instance(iid)
            existing.append(iid)
        except Exception:
            pass
    if existing:
        backend.ec2_backend.terminate_instances(existing)
        try:
            from moto.elbv2.models import elbv2_backends

            elbv2_backends[backend.account_id][backend.region_name].notify_terminate_instances(existing)
        except Exception:
            pass
    backend.update_attached_elbs(group.name)
    backend.update_attached_target_groups(group.name)
    _ecs_cleanup(backend.account_id, backend.region_name, instance_ids)


def _decrement_desired(group: Any) -> None:
    group.desired_capacity = max(0, (group.desired_capacity or 0) - 1)
    if group.min_size is not None and group.min_size > group.desired_capacity:
        group.min_size = group.desired_capacity


def _launch_instances(group: Any, count: int) -> list[Any]:
    before = {s.instance.id for s in group.instance_states}
    group.replace_autoscaling_group_instances(count, group.get_propagated_tags())
    return [s for s in group.instance_states if s.instance.id not in before]


def _apply_completion(backend: AutoScalingBackend, action: LifecycleAction, result: str) -> None:
    group = backend.autoscaling_groups.get(action.group)
    if group is None:
        return
    state = _instance_state(group, action.instance_id)
    if action.transition == TERMINATING:
        # CONTINUE or ABANDON: the instance is terminated either way.
        _remove_and_terminate(backend, group, [action.instance_id])
        if not action.decrement:
            _launch_instances(group, 1)
    else:
        if result == "CONTINUE":
            if state is not None:
                state.lifecycle_state = "InService"
        else:
            _remove_and_terminate(backend, group, [action.instance_id])
            _decrement_desired(group)
