"""Seed and drive a simulated ECS-on-EC2 cluster in the emulator (tests/emulator).

    fleet = seed_cluster(emulator.url, "us-east-1", instances=3, services=["web", "worker"], daemon=True)
    victim = fleet.instances[0]
    event = fire_lifecycle(emulator.url, fleet, victim.ec2_instance_id)   # EventBridge event dict
    ... run the function ...
    play_scheduler(fleet)          # stop/replace tasks on DRAINING instances, as ECS would
    assert tasks_on(fleet, victim) == []

Everything goes through boto3 against the emulator, except the lifecycle
actions and instance refresh statuses, which use the emulator's
``/_autopilot/`` control endpoints.

The package, by seam (everything is importable from ``harness.fleet``):

* ``clients``:   boto3 clients per endpoint/region/account, ``control()`` for the emulator's endpoints
* ``model``:     ``Fleet`` and ``FleetInstance``, the tags and transitions they use
* ``seeding``:   ``seed_cluster``, lifecycle hooks, and registering hosts that joined later
* ``scheduler``: tasks on hosts, and ``play_scheduler`` (ECS moving tasks off DRAINING hosts)
* ``lifecycle``: lifecycle actions (``fire_lifecycle``) and instance refreshes
* ``images``:    launch template versions, describable AMIs, (public) SSM AMI parameters
"""

from ..events import ACCOUNT, lifecycle_event
from .clients import ControlError, client, control, in_account, unique
from .images import ECS_AMI_PARAMETER, _image_in, new_ami_version, publish_ecs_ami, put_ssm_parameter, register_image
from .lifecycle import (
    create_lifecycle_action,
    expire_lifecycle_action,
    fire_lifecycle,
    instance_refreshes,
    lifecycle_actions,
    set_refresh_status,
)
from .model import CLUSTER_TAG, DEFAULT_AMI, LAUNCHING, MANAGED_TAG, TERMINATING, Fleet, FleetInstance
from .scheduler import all_tasks, describe_tasks, play_scheduler, service_of, set_draining, stop_tasks, tasks_on
from .seeding import (
    put_lifecycle_hook,
    register_group_instances,
    register_new_instances,
    seed_cluster,
    start_service_tasks,
)

__all__ = [
    "ACCOUNT", "CLUSTER_TAG", "DEFAULT_AMI", "ECS_AMI_PARAMETER", "LAUNCHING", "MANAGED_TAG", "TERMINATING",
    "ControlError", "Fleet", "FleetInstance", "_image_in", "all_tasks", "client", "control", "create_lifecycle_action",
    "describe_tasks", "expire_lifecycle_action", "fire_lifecycle", "in_account", "instance_refreshes",
    "lifecycle_actions", "lifecycle_event", "new_ami_version", "play_scheduler", "publish_ecs_ami", "put_lifecycle_hook",
    "put_ssm_parameter",
    "register_group_instances", "register_image", "register_new_instances", "seed_cluster", "service_of",
    "set_draining", "set_refresh_status", "start_service_tasks", "stop_tasks", "tasks_on", "unique",
]
