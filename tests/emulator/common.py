"""Constants, options, the lock every patched call holds, and the errors the emulator raises."""

from __future__ import annotations

import threading
from typing import Any, Callable

from moto.autoscaling.exceptions import AutoscalingClientError


DEFAULT_REGION = "us-east-1"

TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TRANSITIONS = (TERMINATING, LAUNCHING)

# Instance refresh statuses that block a new StartInstanceRefresh.
REFRESH_ACTIVE = ("Pending", "InProgress", "Cancelling", "RollbackInProgress", "Baking")
REFRESH_TERMINAL = ("Successful", "Failed", "Cancelled", "RollbackFailed", "RollbackSuccessful")
REFRESH_STATUSES = REFRESH_ACTIVE + REFRESH_TERMINAL

# "manual" progression with a tick count that is never reached.
# Note: times=-1 does NOT work: moto tests `tick >= times`, so -1 moves the
# task on every read of its status.
ECS_TASK_HOLD_TRANSITION = {"progression": "manual", "times": 2**62}

OPTIONS: dict[str, Any] = {
    # Clean up ECS when a lifecycle action or refresh terminates an instance:
    # stop its tasks ("Host EC2 (instance i-...) terminated.") and deregister
    # its container instance.
    "ecs_cleanup": True,
}

_LOCK = threading.RLock()


class InstanceRefreshInProgress(AutoscalingClientError):
    code = "InstanceRefreshInProgress"
    message = (
        "An Instance Refresh is already in progress and blocks the execution "
        "of this Instance Refresh."
    )

    def __init__(self) -> None:
        super().__init__(self.message)


class ActiveInstanceRefreshNotFound(AutoscalingClientError):
    code = "ActiveInstanceRefreshNotFound"

    def __init__(self, group: str) -> None:
        super().__init__(
            f"No in progress or pending Instance Refresh found for Auto Scaling group {group}"
        )


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def keep_create_service_param(param: str, keep: Callable[[Any, Any], None]) -> None:
    """Patches CreateService to hand its ``param``, when given, to ``keep(service, value)``
    (moto drops the parameters these patches keep)."""
    from moto.ecs import responses as ecs_responses

    response_cls = ecs_responses.EC2ContainerServiceResponse
    orig_create = response_cls.create_service

    def create_service(self: Any) -> Any:
        result = orig_create(self)
        value = self._get_param(param)
        if value:
            service = self.ecs_backend._get_service(self._get_param("cluster", "default"), self._get_param("serviceName"))
            keep(service, value)
        return result

    response_cls.create_service = create_service  # type: ignore[method-assign]
