"""The IAM actions template.yaml grants each function's role, read without CloudFormation:
intrinsic functions (`!Sub`, `!GetAtt`, ...) are kept as plain values, since only the
`Action` lists matter here."""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any

import yaml

TEMPLATE = Path(__file__).resolve().parents[2] / "template.yaml"

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
    doc = yaml.load(template.read_text(), Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    role = doc["Resources"][ROLES[function]]["Properties"]
    actions: set[str] = set()
    for policy in role.get("Policies", []):
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement.get("Effect") != "Allow" or statement.get("Sid") in FOR_LAMBDA:
                continue
            listed = statement["Action"]
            actions.update([listed] if isinstance(listed, str) else listed)
    return actions


def is_allowed(call: str, patterns: set[str]) -> bool:
    """Whether `service:Operation` matches a granted pattern (IAM matching ignores case)."""
    return any(fnmatch.fnmatchcase(call.lower(), p.lower()) for p in patterns)
