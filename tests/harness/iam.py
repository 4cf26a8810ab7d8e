"""The IAM actions template.yaml grants each function's role, read without CloudFormation:
intrinsic functions (`!Sub`, `!GetAtt`, ...) are kept as plain values, since only the
`Action` lists matter here."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"
MEMBER_TEMPLATE = TEMPLATE.with_name("member.yaml")

ROLES = {
    "instance-drain": "InstanceDrainRole",
    "ami-rollout": "AmiRolloutRole",
    "guardduty-responder": "GuardDutyResponderRole",
    "task-retirement": "TaskRetirementRole",
}

# Statements for Lambda itself rather than the function's code: the runtime writes logs,
# the event source mapping polls the queue, a failed asynchronous invocation goes to the
# dead-letter queue, SNS encrypts with the topic's key on the caller's behalf.
FOR_LAMBDA = {
    "WriteOwnLogs",
    "ConsumeDrainQueue",
    "ConsumeRetirementQueue",
    "DeadLetterFailedInvocations",
    "NotifyTopicEncryption",
    "ConsumeFanOutQueue",
}

# Hub mode (docs/organization.md): each function's role also gets its `<Role>HubPolicy`
# (AssumeRole into its member roles, ami-rollout's fan-out queue and ListAccounts), and in
# member accounts it acts through `member.yaml`'s role of the same function.
HUB_POLICIES = {f: r.removesuffix("Role") + "HubPolicy" for f, r in ROLES.items()}
MEMBER_ROLES = {f: r.removesuffix("Role") + "MemberRole" for f, r in ROLES.items()}
MEMBER_ROLE_PREFIX = "ecs-autopilot"  # the template's MemberRolePrefix default

# Batch operations IAM authorizes with the single operation's action ("the permission
# for SendMessageBatch is sqs:SendMessage", https://docs.aws.amazon.com/AWSSimpleQueueService/latest/SQSDeveloperGuide/sqs-api-permissions-reference.html).
AUTHORIZED_AS = {
    "sqs:SendMessageBatch": "sqs:SendMessage",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}


class _Loader(yaml.SafeLoader):
    pass


def _any_tag(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.ScalarNode):
        return loader.construct_scalar(node)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node)
    return loader.construct_mapping(node)


_Loader.add_multi_constructor("!", _any_tag)


def allowed_actions(function: str, template: Path = TEMPLATE) -> set[str]:
    """`service:Action` patterns of the Allow statements of the function's role that its
    code needs (all but [`FOR_LAMBDA`]'s)."""
    return _role_actions(template, ROLES[function])


def _load(template: Path) -> dict[str, Any]:
    return yaml.load(template.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


def _statements(document: dict[str, Any]) -> Iterable[dict[str, Any]]:
    """A policy document's statements, a conditional one (`!If [cond, statement,
    AWS::NoValue]`, kept as a list by the loader) counted as present."""
    for statement in document["Statement"]:
        if isinstance(statement, list):
            yield from (s for s in statement[1:] if isinstance(s, dict))
        else:
            yield statement


def _actions(documents: Iterable[dict[str, Any]]) -> set[str]:
    actions: set[str] = set()
    for document in documents:
        for statement in _statements(document):
            if statement.get("Effect") != "Allow" or statement.get("Sid") in FOR_LAMBDA:
                continue
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def _role_actions(template: Path, logical_id: str) -> set[str]:
    role = _load(template)["Resources"][logical_id]["Properties"]
    return _actions(p["PolicyDocument"] for p in role.get("Policies", []))


def hub_actions(function: str) -> set[str]:
    """What the function's role grants in hub mode: its own statements and its HubPolicy's."""
    policy = _load(TEMPLATE)["Resources"][HUB_POLICIES[function]]["Properties"]
    return allowed_actions(function) | _actions([policy["PolicyDocument"]])


def member_actions(function: str) -> set[str]:
    """What the function's member role (member.yaml) grants in a member account."""
    return _role_actions(MEMBER_TEMPLATE, MEMBER_ROLES[function])


def hub_privilege_problems(function: str, calls: Iterable[Any]) -> list[str]:
    """The least-privilege check of hub mode over recorded proxy calls (each with
    `service`, `operation`, `params`, `assumed`): a call made with member credentials
    must be granted (with what it implies) by the function's member role in member.yaml,
    any other by its hub role and HubPolicy; every AssumeRole must name the function's
    own member role (the HubPolicy's only resource)."""
    problems = []
    hub, member = hub_actions(function), member_actions(function)
    own_role = f"role/{MEMBER_ROLE_PREFIX}-{function}"
    for c in calls:
        call = f"{c.service}:{c.operation}"
        needed = {AUTHORIZED_AS.get(call, call)} | implied_actions(call, c.params)
        granted, by = (member, "member role (member.yaml)") if c.assumed else (hub, "hub role")
        missing = sorted(n for n in needed if not is_allowed(n, granted))
        if missing:
            problems.append(f"{function} called {call} needing {missing}, which its {by} does not grant")
        if call == "sts:AssumeRole" and not str(c.params.get("RoleArn", "")).endswith(own_role):
            problems.append(f"{function} assumed {c.params.get('RoleArn')}, not its own member role {own_role}")
    return problems


def is_allowed(call: str, patterns: set[str]) -> bool:
    """Whether `service:Operation` matches a granted pattern (IAM matching ignores case)."""
    return any(fnmatch.fnmatchcase(call.lower(), p.lower()) for p in patterns)


# --------------------------------------------------------------------------
# Implied permissions: what AWS also checks when a call is made with certain arguments
# --------------------------------------------------------------------------
#
# IAM authorizes more than the action a call is named after. A call that makes AWS launch
# from a launch template is also checked for the caller's right to launch what the
# template describes; a call that tags what it creates needs the tagging action. A role
# that grants only the named actions passes every emulator test and fails in a real
# account ("You are not authorized to use launch template"). Each row says: this call,
# when its arguments match, also needs these actions, and where AWS says so. The
# least-privilege check (tests/integration/test_replay.py, last test) and
# tests/integration/test_ami_rollout.py apply it to every call the proxy recorded; the
# emulator itself does not evaluate IAM, so this recorded-call check is where the test bed
# enforces it.


def has(params: dict[str, Any], path: str) -> bool:
    """Whether a recorded call's parameters contain `path` (dot-separated): flattened
    Query-protocol keys (`DesiredConfiguration.LaunchTemplate.Version`) and nested JSON
    (`overrides.taskRoleArn`) alike."""
    if any(k == path or k.startswith(path + ".") for k in params):
        return True
    node: Any = params
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False
        node = node[part]
    return node not in (None, "", [], {})


@dataclass(frozen=True)
class Implied:
    call: str  # service:Operation
    when: Callable[[dict[str, Any]], bool]
    needs: tuple[str, ...]
    why: str
    source: str


_LT_PERMISSIONS = "https://docs.aws.amazon.com/autoscaling/ec2/userguide/ec2-auto-scaling-launch-template-permissions.html"
_EC2_TAG_ON_CREATE = "https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/supported-iam-actions-tagging.html"
_ECS_TAG_ON_CREATE = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/supported-iam-actions-tagging.html"
_ECS_PASSROLE = "https://docs.aws.amazon.com/AmazonECS/latest/developerguide/task-iam-roles.html"
_EC2_PASSROLE = "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_use_switch-role-ec2.html"

# Launching from a launch template: RunInstances on the template and what it launches,
# PassRole for its instance profile, CreateTags for its tag specifications, GetParameters
# for an ImageId of resolve:ssm:… . The template's contents are not in the call, so the
# whole set is required: the role must work for any template a tagged group may use.
_LAUNCH = ("ec2:RunInstances", "iam:PassRole", "ec2:CreateTags", "ssm:GetParameters")

IMPLIED: tuple[Implied, ...] = (
    Implied("autoscaling:StartInstanceRefresh", lambda p: has(p, "DesiredConfiguration.LaunchTemplate")
            or has(p, "DesiredConfiguration.MixedInstancesPolicy"), _LAUNCH,
            "a desired configuration points the group at a launch template version: AWS validates the caller's "
            "ec2:RunInstances (and iam:PassRole, ec2:CreateTags, ssm:GetParameters for what the template uses)",
            _LT_PERMISSIONS),
    Implied("autoscaling:CreateAutoScalingGroup", lambda p: has(p, "LaunchTemplate") or has(p, "MixedInstancesPolicy"),
            _LAUNCH, "creating a group from a launch template", _LT_PERMISSIONS),
    Implied("autoscaling:UpdateAutoScalingGroup", lambda p: has(p, "LaunchTemplate") or has(p, "MixedInstancesPolicy"),
            _LAUNCH, "pointing a group at a launch template (version)", _LT_PERMISSIONS),
    Implied("ec2:RunInstances", lambda p: has(p, "IamInstanceProfile"), ("iam:PassRole",),
            "an instance profile passes its role to EC2", _EC2_PASSROLE),
    Implied("ec2:RunInstances", lambda p: has(p, "TagSpecification") or has(p, "LaunchTemplate"),
            ("ec2:CreateTags",), "tags applied at launch (or by the template)", _EC2_TAG_ON_CREATE),
    *(Implied(f"ec2:{op}", lambda p: has(p, "TagSpecification"), ("ec2:CreateTags",),
              "tags applied on creation", _EC2_TAG_ON_CREATE)
      for op in ("CreateSnapshot", "CreateSnapshots", "CreateVolume", "CreateImage", "CreateLaunchTemplate",
                 "CreateLaunchTemplateVersion", "CopyImage", "CreateSecurityGroup")),
    *(Implied(f"ecs:{op}", lambda p: has(p, "tags"), ("ecs:TagResource",),
              "tags applied on creation", _ECS_TAG_ON_CREATE)
      for op in ("CreateService", "RunTask", "StartTask", "RegisterTaskDefinition", "CreateCluster",
                 "CreateCapacityProvider", "CreateTaskSet", "RegisterContainerInstance")),
    *(Implied(f"ecs:{op}", lambda p: has(p, "overrides.taskRoleArn") or has(p, "overrides.executionRoleArn"),
              ("iam:PassRole",), "a task role override passes the role to ECS tasks", _ECS_PASSROLE)
      for op in ("RunTask", "StartTask")),
    Implied("ecs:RegisterTaskDefinition", lambda p: has(p, "taskRoleArn") or has(p, "executionRoleArn"),
            ("iam:PassRole",), "a task definition names the roles its tasks get", _ECS_PASSROLE),
)


def implied_actions(call: str, params: dict[str, Any]) -> set[str]:
    """What AWS also checks for `call` (`service:Operation`) made with `params`."""
    return {need for row in IMPLIED if row.call.lower() == call.lower() and row.when(params) for need in row.needs}


def required_actions(calls: Iterable[tuple[str, dict[str, Any]]]) -> set[str]:
    """Every action recorded calls need: the calls themselves and what they imply."""
    needed: set[str] = set()
    for call, params in calls:
        needed.add(call)
        needed |= implied_actions(call, params)
    return needed
