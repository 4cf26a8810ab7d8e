"""patch_moto: installs every patch of the package, once per process; and the smaller EC2, ECS and Auto Scaling patches."""

from __future__ import annotations

from typing import Any

from moto.autoscaling.models import AutoScalingBackend
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult

from .common import _LOCK, keep_create_service_param
from .state import _actions, _now, _refreshes
from .autoscaling_api import PATCHED_ACTIONS
from .ecs_fidelity import _patch_ecs
from .ami import _patch_group_launches, _patch_image_platform_details, _patch_instance_launch_template, _patch_launch_template_client_token, _patch_mixed_group_launch_template, _patch_ssm_public_parameters
from .drain_bed import _patch_drain_test_bed, _patch_scheduled_events
from .sts import _patch_assume_role


_PATCHED = False


def patch_moto(ecs_fidelity: bool = True) -> None:
    """Idempotently add the missing actions to moto (in this process)."""
    global _PATCHED
    if _PATCHED:
        return
    for name, fn in PATCHED_ACTIONS.items():
        setattr(AutoScalingResponse, name, fn)

    orig_delete = AutoScalingBackend.delete_auto_scaling_group

    def delete_auto_scaling_group(self: AutoScalingBackend, group_name: str) -> None:
        orig_delete(self, group_name)
        with _LOCK:
            _refreshes(self).pop(group_name, None)
            for action in _actions(self):
                if action.group == group_name and action.status == "active":
                    action.status = "completed"
                    action.completed_by = "GroupDeleted"
                    action.completed_at = _now()

    AutoScalingBackend.delete_auto_scaling_group = delete_auto_scaling_group  # type: ignore[method-assign]
    _patch_instance_launch_template()
    _patch_launch_template_client_token()
    _patch_ssm_public_parameters()
    _patch_image_lookup()
    _patch_image_platform_details()
    _patch_mixed_group_launch_template()
    _patch_group_launches()
    _patch_instance_index()
    _patch_ec2_evidence()
    _patch_capacity_rebalance_update()
    _patch_scheduled_events()
    _patch_drain_test_bed()
    _patch_assume_role()
    if ecs_fidelity:
        _patch_ecs()
        _patch_ecs_deployments()
    _PATCHED = True


def _patch_ec2_evidence() -> None:
    """guardduty-responder's evidence and isolation calls, as EC2 answers them.

    - CreateSnapshots with CopyTagsFromSource=volume copies each volume's tags onto its
      snapshot, next to the TagSpecifications tags ("CopyTagsFromSource: Copies the tags
      from the specified volume to corresponding snapshot",
      https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_CreateSnapshots.html);
      moto ignores the parameter.
    - ModifyNetworkInterfaceAttribute with Groups naming a security group that does not
      exist fails with InvalidGroup.NotFound ("The specified security group does not
      exist", https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html;
      the Groups parameter "replaces the security groups of the network interface",
      https://docs.aws.amazon.com/AWSEC2/latest/APIReference/API_ModifyNetworkInterfaceAttribute.html);
      moto stored None as the interface's group and broke every later describe."""
    from moto.ec2.exceptions import InvalidSecurityGroupNotFoundError
    from moto.ec2.models.elastic_block_store import EBSBackend
    from moto.ec2.models.elastic_network_interfaces import NetworkInterfaceBackend
    from moto.ec2.responses.elastic_block_store import ElasticBlockStore

    orig_response = ElasticBlockStore.create_snapshots
    orig_snapshots = EBSBackend.create_snapshots

    def create_snapshots_response(self: Any) -> Any:
        copy = self._get_param("CopyTagsFromSource") == "volume"
        backend = self.ec2_backend
        if not copy:
            return orig_response(self)

        def with_volume_tags(inner: Any, instance_spec: Any, description: str, tags: dict[str, str]) -> Any:
            made = orig_snapshots(inner, instance_spec, description, tags)
            for snapshot in made:
                volume_tags = {t["key"]: t["value"] for t in inner.describe_tags(filters={"resource-id": [snapshot.volume.id]})}
                snapshot.add_tags({**volume_tags, **tags})
            return made

        backend.create_snapshots = lambda *a, **k: with_volume_tags(backend, *a, **k)
        try:
            return orig_response(self)
        finally:
            del backend.create_snapshots

    ElasticBlockStore.create_snapshots = create_snapshots_response  # type: ignore[method-assign]

    orig_modify = NetworkInterfaceBackend.modify_network_interface_attribute

    def modify_network_interface_attribute(self: Any, eni_id: str, group_ids: list[str], *args: Any, **kwargs: Any) -> None:
        for group_id in group_ids or []:
            if self.get_security_group_from_id(group_id) is None:
                raise InvalidSecurityGroupNotFoundError(group_id)
        orig_modify(self, eni_id, group_ids, *args, **kwargs)

    NetworkInterfaceBackend.modify_network_interface_attribute = modify_network_interface_attribute  # type: ignore[method-assign]


def _patch_capacity_rebalance_update() -> None:
    """UpdateAutoScalingGroup applies `CapacityRebalance` (moto reads it only on
    CreateAutoScalingGroup and drops it on update). AWS: "CapacityRebalance — Enables or
    disables Capacity Rebalancing" is an UpdateAutoScalingGroup parameter, and
    DescribeAutoScalingGroups returns the group's `CapacityRebalance`
    (https://docs.aws.amazon.com/autoscaling/ec2/APIReference/API_UpdateAutoScalingGroup.html,
    https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-capacity-rebalancing.html).
    """
    orig_update = AutoScalingResponse.update_auto_scaling_group

    def update_auto_scaling_group(self: AutoScalingResponse) -> ActionResult:
        result = orig_update(self)
        value = self._get_bool_param("CapacityRebalance", None)
        if value is not None:
            group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
            group.capacity_rebalance = value
        return result

    AutoScalingResponse.update_auto_scaling_group = update_auto_scaling_group  # type: ignore[method-assign]


def _patch_ecs_deployments() -> None:
    """Deployments as task-retirement's disruption budget and deployment-controller
    handling see them (moto: every ECS-controller deployment stays IN_PROGRESS forever,
    because its running count is an environment variable; and any controller accepts
    forceNewDeployment).

    * rolloutState: AWS marks a deployment COMPLETED once it reached steady state, i.e.
      its tasks run at the desired count
      (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_Deployment.html,
      `rolloutState`). Here the PRIMARY deployment of an ECS-controller service is
      IN_PROGRESS while a RUNNING task of the service was started before the deployment
      (forceNewDeployment resets `createdAt`: its old tasks are still to be replaced) or
      fewer tasks than desired run, else COMPLETED. A test "finishes" a deployment by
      stopping the old tasks and starting new ones (harness.fleet.start_service_tasks).
    * forceNewDeployment on a service with the CODE_DEPLOY or EXTERNAL deployment
      controller is rejected with InvalidParameterException: AWS only lets UpdateService
      change a few fields of those services and a new deployment goes through CodeDeploy
      or the external controller
      (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_UpdateService.html,
      "If your service uses the CODE_DEPLOY deployment controller ..."; and
      https://docs.aws.amazon.com/AmazonECS/latest/developerguide/deployment-type-external.html).
    * deploymentConfiguration: AWS always returns it; for a REPLICA service created
      without one the defaults are minimumHealthyPercent 100 and maximumPercent 200
      (https://docs.aws.amazon.com/AmazonECS/latest/APIReference/API_DeploymentConfiguration.html).
    """
    from moto.ecs import models as ecs_models

    service_cls = ecs_models.Service

    def _get_deployments(self: Any) -> list[dict[str, Any]]:
        deployments = self.__dict__.get("_autopilot_deployments", [])
        controller = (self.deployment_controller or {}).get("type", "ECS")
        if controller != "ECS":
            return deployments
        backend = self._backend
        group = f"service:{self.name}"
        running = [
            t
            for t in backend.tasks.get(self.cluster_name, {}).values()
            if t.desired_status == "RUNNING" and t.group == group
        ]
        for d in deployments:
            if d.get("status") != "PRIMARY":
                continue
            created = d.get("createdAt")
            old = [t for t in running if created is not None and getattr(t, "started_at", None) is not None and t.started_at < created]
            done = not old and len(running) >= (self.desired_count or 0)
            d["rolloutState"] = "COMPLETED" if done else "IN_PROGRESS"
            d["rolloutStateReason"] = f"ECS deployment {d['id']} {'completed' if done else 'in progress'}."
            d["runningCount"] = len(running) - len(old)
        return deployments

    def _set_deployments(self: Any, value: Any) -> None:
        self.__dict__["_autopilot_deployments"] = value

    service_cls.deployments = property(_get_deployments, _set_deployments)  # type: ignore[assignment]

    def _get_deployment_configuration(self: Any) -> Any:
        value = self.__dict__.get("_autopilot_deployment_configuration")
        if value:
            return value
        if getattr(self, "scheduling_strategy", "REPLICA") == "DAEMON":
            return {"maximumPercent": 100, "minimumHealthyPercent": 0}
        return {"maximumPercent": 200, "minimumHealthyPercent": 100}

    def _set_deployment_configuration(self: Any, value: Any) -> None:
        self.__dict__["_autopilot_deployment_configuration"] = value

    service_cls.deployment_configuration = property(  # type: ignore[assignment]
        _get_deployment_configuration, _set_deployment_configuration
    )

    backend_cls = ecs_models.EC2ContainerServiceBackend
    orig_update = backend_cls.update_service

    def update_service(self: Any, service_properties: dict[str, Any]) -> Any:
        if service_properties.get("force_new_deployment"):
            cluster_str = service_properties.get("cluster", "default")
            service = self._get_service(cluster_str, service_properties["service"].split("/")[-1])
            controller = (service.deployment_controller or {}).get("type", "ECS")
            if controller != "ECS":
                raise ecs_models.InvalidParameterException(
                    f"Cannot force a new deployment on services with a {controller} deployment controller. "
                    + ("Use AWS CodeDeploy to trigger a new deployment." if controller == "CODE_DEPLOY" else "Create a new task set.")
                )
        return orig_update(self, service_properties)

    backend_cls.update_service = update_service  # type: ignore[method-assign]

    def keep_deployment_configuration(service: Any, config: dict[str, Any]) -> None:
        service.deployment_configuration = {
            k: config[k] for k in ("maximumPercent", "minimumHealthyPercent") if k in config
        }

    keep_create_service_param("deploymentConfiguration", keep_deployment_configuration)


def _patch_instance_index() -> None:
    """EC2 `get_instance` by an index instead of a scan of every instance (moto: O(n) per
    lookup, so registering n container instances cost O(n²) and a 20,000-host bench fleet
    took many minutes to seed). Same answers: moto never removes a reservation, and a
    reservation is indexed again when its instance count changes (run_instances stores it
    before appending its instances)."""
    from moto.ec2.exceptions import InvalidInstanceIdError
    from moto.ec2.models.instances import InstanceBackend

    def get_instance(self: Any, instance_id: str) -> Any:
        index: dict[str, Any] = self.__dict__.setdefault("_autopilot_instance_index", {})
        counts: dict[str, int] = self.__dict__.setdefault("_autopilot_indexed_counts", {})
        found = index.get(instance_id)
        if found is None:
            with _LOCK:
                for rid, reservation in list(self.reservations.items()):
                    if counts.get(rid) != len(reservation.instances):
                        for instance in list(reservation.instances):
                            index[instance.id] = instance
                        counts[rid] = len(reservation.instances)
            found = index.get(instance_id)
        if found is None:
            raise InvalidInstanceIdError(instance_id)
        return found

    InstanceBackend.get_instance = get_instance  # type: ignore[method-assign]


def _patch_image_lookup() -> None:
    """Every new EC2 instance looks up its AMI with DescribeImages(image-id filter), which
    moto answers by fnmatch-ing ~1,300 bundled images: 60 ms per instance, 20 minutes for
    a 20,000-instance fleet. An exact image-id filter is answered from the id index with
    the same result."""
    from moto.ec2.models.amis import AmiBackend

    orig = AmiBackend.describe_images

    def describe_images(self: Any, ami_ids: Any = None, filters: Any = None, exec_users: Any = None, owners: Any = None) -> Any:
        wanted = (filters or {}).get("image-id") if not (ami_ids or exec_users or owners) else None
        if isinstance(wanted, list) and len(wanted) == 1:
            wanted = wanted[0]
        if len(filters or {}) == 1 and isinstance(wanted, str) and not any(c in wanted for c in "*?["):
            return [self.amis[wanted]] if wanted in self.amis else []
        return orig(self, ami_ids=ami_ids, filters=filters, exec_users=exec_users, owners=owners)

    AmiBackend.describe_images = describe_images  # type: ignore[method-assign]
