"""The instance-drain test bed (issue 12): several hooks per group, warm pools, disconnected agents, status checks, scheduled events and SQS delays a test may skip."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.core import DEFAULT_ACCOUNT_ID

from .common import ControlError, DEFAULT_REGION, LAUNCHING, TERMINATING, _LOCK, keep_create_service_param
from .state import LifecycleAction, _actions
from .effects import _instance_state
from .autoscaling_api import PATCHED_ACTIONS
from . import control, effects
from .control import _backend, _json_ready, _require
from .clock import _expire_lapsed, _hook_global_timeout


PLACES = ("EC2", "AutoScalingGroup", "WarmPool")


def control_container_instance(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_autopilot/container-instance {cluster, instance_id, agent_connected}: what
    ECS shows when a host's agent loses (or regains) its connection."""
    _require(body, "cluster", "instance_id")
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    for ci in ecs.container_instances.get(body["cluster"], {}).values():
        if ci.ec2_instance_id == body["instance_id"]:
            if "agent_connected" in body:
                ci.agent_connected = bool(body["agent_connected"])
            return {"container_instance_arn": ci.container_instance_arn, "agent_connected": ci.agent_connected,
                    "status": ci.status}
    raise ControlError(404, f"{body['instance_id']} is no container instance of {body['cluster']}")


def _set_agent(backend: AutoScalingBackend, instance_id: str, connected: bool) -> None:
    from moto.ecs.models import ecs_backends

    ecs = ecs_backends[backend.account_id][backend.region_name]
    for instances in ecs.container_instances.values():
        for ci in instances.values():
            if ci.ec2_instance_id == instance_id:
                ci.agent_connected = connected


def _patch_drain_test_bed() -> None:
    """Installs the blocks above. Warm pools: a lifecycle action's "Origin" and
    "Destination" are EC2, AutoScalingGroup or WarmPool
    (https://docs.aws.amazon.com/autoscaling/ec2/userguide/warm-pool-events.html); an
    instance in the pool is stopped (Warmed:Stopped), its ECS agent disconnected."""
    import moto.autoscaling.models as asg_models

    orig_hook_init = asg_models.LifecycleHook.__init__

    def hook_init(self: Any, *args: Any, **kwargs: Any) -> None:
        orig_hook_init(self, *args, **kwargs)
        self.global_timeout = _hook_global_timeout(self.heartbeat_timeout)

    asg_models.LifecycleHook.__init__ = hook_init  # type: ignore[method-assign]

    # Every lifecycle call and control read first lets lapsed actions expire.
    for name, fn in PATCHED_ACTIONS.items():
        if "lifecycle" in name:
            def expiring(self: AutoScalingResponse, _fn: Any = fn) -> Any:
                with _LOCK:
                    _expire_lapsed(self.autoscaling_backend)
                return _fn(self)

            setattr(AutoScalingResponse, name, expiring)
    # Replaced on their modules: the middleware and every caller of _apply_completion look
    # them up there at call time.
    orig_list = control.control_list_lifecycle_actions

    def list_actions(query: dict[str, str]) -> dict[str, Any]:
        _expire_lapsed(_backend(query))
        return orig_list(query)

    control.control_list_lifecycle_actions = list_actions

    # Several hooks on one transition: each gets its own action, and the instance waits
    # until every one is completed ("Amazon EC2 Auto Scaling waits for all lifecycle
    # hooks to complete"); one ABANDON on a launch wins.
    orig_create = control.control_create_lifecycle_action

    def create(body: dict[str, Any]) -> dict[str, Any]:
        for key in ("origin", "destination"):
            if body.get(key) and body[key] not in PLACES:
                raise ControlError(400, f"{key} must be one of {PLACES}")
        backend = _backend(body)
        instance_id = body.get("instance_id")
        group = backend.autoscaling_groups.get(body.get("group") or "")
        state = _instance_state(group, instance_id) if group is not None and instance_id else None
        waiting = state is not None and any(
            a.status == "active" and a.instance_id == instance_id and a.group == body.get("group")
            and a.transition == body.get("transition") and a.hook != body.get("hook")
            for a in _actions(backend)
        )
        if body.get("origin") == "WarmPool" and instance_id:
            _set_agent(backend, instance_id, True)  # the host boots: its agent reconnects
        saved = state.lifecycle_state if state is not None else None
        if state is not None and (waiting or saved.startswith("Warmed:")):
            state.lifecycle_state = "InService"  # what the creation checks; restored below
        try:
            result = orig_create({**body, "decrement": False} if waiting else body)
        finally:
            if waiting and state is not None:
                state.lifecycle_state = saved
        action = next(a for a in _actions(backend) if a.token == result["token"])
        action.origin = body.get("origin")  # type: ignore[attr-defined]
        action.destination = body.get("destination")  # type: ignore[attr-defined]
        return action.to_json() | {"group_arn": result.get("group_arn")}

    control.control_create_lifecycle_action = create

    orig_to_json = LifecycleAction.to_json

    def to_json(self: LifecycleAction) -> dict[str, Any]:
        return orig_to_json(self) | {"origin": getattr(self, "origin", None),
                                     "destination": getattr(self, "destination", None)}

    LifecycleAction.to_json = to_json  # type: ignore[method-assign]

    orig_apply = effects._apply_completion

    def apply_completion(backend: AutoScalingBackend, action: LifecycleAction, result: str) -> None:
        others = [a for a in _actions(backend) if a is not action and a.instance_id == action.instance_id
                  and a.group == action.group and a.transition == action.transition
                  and (a.status == "active" or (a.completed_at is not None and a.completed_at >= action.created_at))]
        if any(a.status == "active" for a in others):
            return  # the instance still waits for another hook
        if action.transition == LAUNCHING and any(a.result == "ABANDON" for a in others):
            result = "ABANDON"
        if getattr(action, "destination", None) == "WarmPool" and (action.transition == TERMINATING or result == "CONTINUE"):
            group = backend.autoscaling_groups.get(action.group)
            state = _instance_state(group, action.instance_id) if group else None
            if state is not None:
                state.lifecycle_state = "Warmed:Stopped"
                backend.ec2_backend.stop_instances([action.instance_id])
                _set_agent(backend, action.instance_id, False)
            return
        orig_apply(backend, action, result)

    effects._apply_completion = apply_completion

    # SQS: a queue tagged emulator:skip-delays=true delivers delayed messages at once,
    # so a test need not sleep through a drain's poll interval (DRAIN_POLL_SECONDS >= 5).
    from moto.sqs.models import SQSBackend

    orig_send = SQSBackend.send_message

    def send_message(self: Any, queue_name: str, message_body: str, *args: Any, **kwargs: Any) -> Any:
        queue = self.get_queue(queue_name)
        if (getattr(queue, "tags", None) or {}).get("emulator:skip-delays") == "true":
            if len(args) >= 2:
                args = (args[0], 0, *args[2:])
            else:
                kwargs["delay_seconds"] = 0
        return orig_send(self, queue_name, message_body, *args, **kwargs)

    SQSBackend.send_message = send_message  # type: ignore[method-assign]

    _patch_placement_facts()


def _patch_placement_facts() -> None:
    """What instance-drain reads to tell whether a service can leave a host.

    * CreateService keeps ``placementConstraints`` and DescribeServices returns them
      ("placementConstraints: An array of placement constraint objects to use for tasks
      in your service", API_CreateService.html); moto dropped them. UpdateService already
      stores them (moto sets every given property).
    * A container instance has the ``ecs.cpu-architecture`` attribute (x86_64 or arm64,
      "Amazon ECS container instance attributes", task-placement-constraints.html);
      moto registered none. It follows the instance's AMI architecture.
    * DescribeInstanceStatus reports a host's status checks as set by
      ``POST /_autopilot/instance-status`` (``impaired``, ``insufficient-data``, ...):
      "impaired" is what a failed system or instance reachability check shows
      (monitoring-system-instance-status-check.html); moto always said ``ok``.
    """
    from moto.ec2.models.instances import Instance
    from moto.ecs import models as ecs_models

    keep_create_service_param("placementConstraints",
                              lambda service, constraints: setattr(service, "placement_constraints", constraints))

    orig_ci_init = ecs_models.ContainerInstance.__init__

    def ci_init(ci: Any, *args: Any, **kwargs: Any) -> None:
        orig_ci_init(ci, *args, **kwargs)
        from moto.ec2.models import ec2_backends

        ec2 = ec2_backends[ci._account_id][ci.region_name]
        instance = ec2.get_instance(ci.ec2_instance_id)
        arch = getattr(instance, "architecture", None) or "x86_64"
        ci.attributes.setdefault("ecs.cpu-architecture", "arm64" if arch == "arm64" else "x86_64")

    ecs_models.ContainerInstance.__init__ = ci_init  # type: ignore[method-assign]

    def checked(kind: str) -> Any:
        orig = getattr(Instance, kind)

        def status(self: Any) -> dict[str, Any]:
            given = self.__dict__.get("_autopilot_status_checks", {}).get(kind)
            if given is None or self.state_code != 16:
                return orig.fget(self)
            detail = "failed" if given == "impaired" else ("passed" if given == "ok" else given)
            return {"Details": [{"Name": "reachability", "Status": detail}], "Status": given}

        return property(status)

    Instance.instance_status = checked("instance_status")  # type: ignore[method-assign,assignment]
    Instance.system_status = checked("system_status")  # type: ignore[method-assign,assignment]


STATUS_CHECK_VALUES = ("ok", "impaired", "insufficient-data", "initializing")


def control_instance_status(body: dict[str, Any]) -> dict[str, Any]:
    """POST /_autopilot/instance-status {instance_id, instance_status?, system_status?}:
    what EC2's status checks report for a running instance."""
    _require(body, "instance_id")
    from moto.ec2.models import ec2_backends

    ec2 = ec2_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    instance = ec2.get_instance(body["instance_id"])
    checks = instance.__dict__.setdefault("_autopilot_status_checks", {})
    for kind in ("instance_status", "system_status"):
        if kind in body:
            if body[kind] not in STATUS_CHECK_VALUES:
                raise ControlError(400, f"{kind} must be one of {STATUS_CHECK_VALUES}")
            checks[kind] = body[kind]
    return {"instance_id": instance.id, "instance_status": instance.instance_status["Status"],
            "system_status": instance.system_status["Status"]}


def _patch_scheduled_events() -> None:
    """DescribeInstanceStatus reports an instance's scheduled events (`Events`: Code,
    Description, NotBefore, NotAfter, InstanceEventId), as AWS does for retirements and
    maintenance (https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/monitoring-instances-status-check_sched.html:
    "instance-retirement", "instance-stop", "instance-reboot", "system-reboot",
    "system-maintenance"; a finished or cancelled event keeps its entry with its
    Description starting "[Completed]" / "[Canceled]"). moto has no events; they are set
    with `POST /_autopilot/scheduled-events`."""
    from moto.ec2.models.instances import Instance

    def events(self: Any) -> list[dict[str, Any]]:
        return list(self.__dict__.get("_autopilot_events", []))

    Instance.events = property(events)  # type: ignore[attr-defined]


def control_scheduled_event(body: dict[str, Any]) -> dict[str, Any]:
    """Schedule an EC2 event on an instance: `{"region", "instance_id", "code"
    (default instance-retirement), "not_before" (ISO 8601), "not_after"?, "description"?}`."""
    _require(body, "instance_id")
    _require(body, "not_before")
    from moto.ec2.models import ec2_backends

    backend = ec2_backends[body.get("account") or DEFAULT_ACCOUNT_ID][body.get("region") or DEFAULT_REGION]
    instance = backend.get_instance(body["instance_id"])
    event = {
        "InstanceEventId": f"instance-event-{uuid.uuid4().hex[:17]}",
        "Code": body.get("code") or "instance-retirement",
        "Description": body.get("description") or "The instance is running on degraded hardware",
        "NotBefore": datetime.fromisoformat(body["not_before"].replace("Z", "+00:00")),
    }
    if body.get("not_after"):
        event["NotAfter"] = datetime.fromisoformat(body["not_after"].replace("Z", "+00:00"))
    instance.__dict__.setdefault("_autopilot_events", []).append(event)
    return {"instance_id": instance.id, "events": _json_ready(instance.events)}
