"""member.yaml, the member template of hub mode (docs/organization.md), generated from
template.yaml so that what a member forwards and what a member role allows can't drift
from the hub.

    python tests/lint/member_template.py           # rewrite member.yaml (make member-template)
    python tests/lint/member_template.py --check   # exit 1 if member.yaml is stale (make lint)

What is derived, and how:

- **Rules.** Every hub rule with an `EventPattern` (the schedules stay in the hub) becomes a
  member rule with the same logical id and the same pattern, whose one target is the hub's
  default bus in `HubRegion`, through the forwarder role. The hub target's `RetryPolicy`
  is kept.
- **Roles.** Each hub function role gives a member role `${MemberRolePrefix}-<function>`
  with the hub role's fleet statements: every statement except those of the hub's own
  plumbing (actions of logs, sqs, sns, kms only). IAM roles are global and a member role
  serves every Region of its account, so `${AWS::Region}` in an ARN becomes `*` and
  `aws:RequestedRegion` conditions are dropped; everything else (Sid, actions, resources,
  conditions, the `${AWS::AccountId}` of the member's own account) is copied as is.
- **Parameters.** The hub parameters those patterns and statements name
  (`LifecycleHookNames`, `AmiRolloutParameterPrefix`, ...) are copied with their
  constraints: pass the hub's values.

The rest (hub identity parameters, trust policies, the forwarder role, conditions) is
written out below. A fleet statement that names a hub resource is an error: it would not
exist in the member account.
"""

from __future__ import annotations

import argparse
import copy
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
HUB = REPO / "template.yaml"
MEMBER = REPO / "member.yaml"

# function -> (hub role, member role logical id, hub role ARN parameter)
FUNCTIONS = {
    "instance-drain": ("InstanceDrainRole", "InstanceDrainMemberRole", "HubInstanceDrainRoleArn"),
    "ami-rollout": ("AmiRolloutRole", "AmiRolloutMemberRole", "HubAmiRolloutRoleArn"),
    "guardduty-responder": ("GuardDutyResponderRole", "GuardDutyResponderMemberRole", "HubGuardDutyResponderRoleArn"),
    "task-retirement": ("TaskRetirementRole", "TaskRetirementMemberRole", "HubTaskRetirementRoleArn"),
}

# Services of the hub's own resources (its logs, queues, topic and key): not fleet rights.
HUB_PLUMBING = {"logs", "sqs", "sns", "kms"}


# -- YAML that keeps CloudFormation's short tags -------------------------------------------


@dataclass
class Tagged:
    tag: str  # "!Sub", "!Ref", ...
    value: Any


class Loader(yaml.SafeLoader):
    pass


def _construct(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Tagged:
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)
    return Tagged("!" + suffix, value)


Loader.add_multi_constructor("!", _construct)


class Dumper(yaml.SafeDumper):
    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)  # indent sequences inside mappings

    def ignore_aliases(self, data: Any) -> bool:
        return True  # no &id001 anchors: every part written out

    def choose_scalar_style(self) -> str:
        # `!Ref Name`, not `!Ref 'Name'`: PyYAML quotes every scalar of an explicit tag.
        style = super().choose_scalar_style()
        event = self.event
        if (style == "'" and not event.style and event.tag and event.tag.startswith("!") and self.analysis
                and not self.analysis.empty and not self.analysis.multiline
                and (self.analysis.allow_flow_plain if self.flow_level else self.analysis.allow_block_plain)):
            return ""
        return style


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    # Long prose (descriptions) folded, as in template.yaml.
    if len(text) > 90 and "\n" not in text and " " in text and not text.startswith(("^", "arn:")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=">")
    return dumper.represent_str(text)


Dumper.add_representer(str, _represent_str)


def _represent(dumper: yaml.SafeDumper, t: Tagged) -> yaml.Node:
    if isinstance(t.value, list):
        flow = all(not isinstance(x, (dict, list)) and not (isinstance(x, Tagged) and isinstance(x.value, (dict, list)))
                   for x in t.value)
        return dumper.represent_sequence(t.tag, t.value, flow_style=flow)
    if isinstance(t.value, dict):
        return dumper.represent_mapping(t.tag, t.value)
    return dumper.represent_scalar(t.tag, t.value)


Dumper.add_representer(Tagged, _represent)


def load(path: Path) -> dict[str, Any]:
    return yaml.load(path.read_text(), Loader=Loader)  # noqa: S506 - a SafeLoader subclass


# -- what is derived ---------------------------------------------------------------------


def forwarded_rules(hub: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The hub rules a member forwards for: every rule with an EventPattern."""
    return {name: r for name, r in hub["Resources"].items()
            if r["Type"] == "AWS::Events::Rule" and "EventPattern" in r["Properties"]}


def _actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


def fleet_statements(hub: dict[str, Any], role: str) -> list[dict[str, Any]]:
    """The statements of a hub role that act on the fleet (not on the hub's own plumbing)."""
    out = []
    for policy in hub["Resources"][role]["Properties"]["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if not isinstance(statement, dict):
                raise SystemExit(f"{role}: a conditional statement ({statement!r}) can't be derived; "
                                 "put hub-mode rights in the role's hub policy")
            if all(a.split(":")[0] in HUB_PLUMBING for a in _actions(statement)):
                continue
            out.append(statement)
    return out


def _any_region(value: Any) -> Any:
    """A hub statement part for a role that serves every Region of its account."""
    if isinstance(value, Tagged):
        if value.tag == "!Sub" and isinstance(value.value, str):
            return Tagged("!Sub", value.value.replace("${AWS::Region}", "*"))
        return Tagged(value.tag, _any_region(value.value))
    if isinstance(value, list):
        return [_any_region(x) for x in value]
    if isinstance(value, dict):
        return {k: _any_region(v) for k, v in value.items()}
    return value


def member_statement(statement: dict[str, Any]) -> dict[str, Any]:
    s = _any_region(copy.deepcopy(statement))
    condition = s.get("Condition")
    if condition:
        for operator in list(condition):
            condition[operator].pop("aws:RequestedRegion", None)
            if not condition[operator]:
                del condition[operator]
        if not condition:
            del s["Condition"]
    return s


def referenced_names(value: Any) -> set[str]:
    """Names a template part refers to: `!Ref X`, `!GetAtt X.Y`, `${X}` and `${X.Y}` in a `!Sub`."""
    names: set[str] = set()
    if isinstance(value, Tagged):
        if value.tag == "!Ref":
            names.add(str(value.value))
        elif value.tag == "!GetAtt":
            names.add(str(value.value).split(".")[0] if isinstance(value.value, str) else str(value.value[0]))
        elif value.tag == "!Sub":
            text = value.value if isinstance(value.value, str) else value.value[0]
            names |= {m.split(".")[0] for m in re.findall(r"\$\{([^}!]+)\}", text)}
            if not isinstance(value.value, str):
                names |= referenced_names(value.value[1])
        else:
            names |= referenced_names(value.value)
    elif isinstance(value, list):
        for x in value:
            names |= referenced_names(x)
    elif isinstance(value, dict):
        for x in value.values():
            names |= referenced_names(x)
    return names


# -- the member template -----------------------------------------------------------------

HEADER = """\
# ---------------------------------------------------------------------------------------
# GENERATED from template.yaml by tests/lint/member_template.py - do not edit by hand:
# change template.yaml (or the generator) and run `make member-template`. `make lint` and
# tests/integration/test_member_template.py fail when this file is stale.
#
# The member stack of hub mode (docs/organization.md): deploy it with a service-managed
# StackSet to every account and Region the hub serves. It holds only
#   - EventBridge rules forwarding exactly what the hub's rules take (same patterns) to
#     the hub's default event bus, with a forwarder role allowed to put events there
#     only (every Region; not in the hub's own account and Region). What can't be
#     forwarded waits in ForwardDeadLetterQueue;
#   - one role per function, ${MemberRolePrefix}-<function>, with the fleet statements of
#     that function's hub role for this account in every Region, assumable only by that
#     hub role (and only from inside the organization, with the external id if set).
#     IAM is global: the roles are created once per account, by the stack instance in
#     MemberRolesRegion (default: HubRegion), so include that Region in the StackSet.
# Plain CloudFormation (no SAM transform) so that StackSets can deploy it.
# ---------------------------------------------------------------------------------------
"""

IDENTITY_PARAMETERS: dict[str, dict[str, Any]] = {
    "HubAccountId": {
        "Type": "String",
        "AllowedPattern": "^[0-9]{12}$",
        "ConstraintDescription": "The 12-digit id of the hub account.",
        "Description": "The account of the hub stack (template.yaml with Accounts set).",
    },
    "HubRegion": {
        "Type": "String",
        "AllowedPattern": "^[a-z]{2}(-[a-z]+)+-[0-9]+$",
        "ConstraintDescription": "A Region name such as us-east-1.",
        "Description": "The Region of the hub stack, whose default event bus the rules forward to.",
    },
    "OrganizationId": {
        "Type": "String",
        "AllowedPattern": "^o-[a-z0-9]{10,32}$",
        "ConstraintDescription": "An AWS Organizations id such as o-a1b2c3d4e5.",
        "Description": "The hub's OrganizationId: member roles trust only principals of this organization.",
    },
    "MemberRolePrefix": {
        "Type": "String",
        "Default": "ecs-autopilot",
        "AllowedPattern": "^[A-Za-z0-9+=,.@_-]{1,44}$",
        "ConstraintDescription": "1 to 44 characters of an IAM role name (letters, digits, +=,.@_-).",
        "Description": "The hub's MemberRolePrefix: the roles are PREFIX-instance-drain, PREFIX-ami-rollout, "
                       "PREFIX-guardduty-responder and PREFIX-task-retirement.",
    },
    "MemberExternalId": {
        "Type": "String",
        "Default": "",
        "AllowedPattern": "^([A-Za-z0-9+=,.@:/_-]{2,1224})?$",
        "ConstraintDescription": "Empty, or 2 to 1224 characters of letters, digits and +=,.@:/_-.",
        "Description": "The hub's MemberExternalId: when set, AssumeRole must pass it (sts:ExternalId). "
                       "Empty = not required.",
    },
    "MemberRolesRegion": {
        "Type": "String",
        "Default": "",
        "AllowedPattern": "^([a-z]{2}(-[a-z]+)+-[0-9]+)?$",
        "ConstraintDescription": "Empty, or a Region name such as us-east-1.",
        "Description": "The one Region whose stack instance creates the member roles (IAM is global). "
                       "Empty = HubRegion.",
    },
}

ROLE_ARN_PARAMETER = {
    "Type": "String",
    "AllowedPattern": "^arn:aws[a-z-]*:iam::[0-9]{12}:role/[A-Za-z0-9+=,.@_/-]+$",
    "ConstraintDescription": "An IAM role ARN.",
}


def _sub(text: str) -> Tagged:
    return Tagged("!Sub", text)


def _ref(name: str) -> Tagged:
    return Tagged("!Ref", name)


HUB_BUS = _sub("arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/default")


def member_role(function: str, statements: list[dict[str, Any]]) -> dict[str, Any]:
    _, _, arn_parameter = FUNCTIONS[function]
    return {
        "Type": "AWS::IAM::Role",
        "Condition": "CreateMemberRoles",
        "Properties": {
            "RoleName": _sub("${MemberRolePrefix}-" + function),
            "Description": f"ecs-autopilot {function}: what the hub's function may do in this account "
                           "(every Region). Assumed by the hub's role only.",
            # The hub caches the credentials until shortly before they expire.
            "MaxSessionDuration": 3600,
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Sid": "HubFunctionRoleOnly",
                    "Effect": "Allow",
                    # The hub account delegates; the conditions name the one role in it.
                    "Principal": {"AWS": _sub("arn:${AWS::Partition}:iam::${HubAccountId}:root")},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "ArnEquals": {"aws:PrincipalArn": _ref(arn_parameter)},
                        "StringEquals": Tagged("!If", [
                            "HasExternalId",
                            {"aws:PrincipalOrgID": _ref("OrganizationId"), "sts:ExternalId": _ref("MemberExternalId")},
                            {"aws:PrincipalOrgID": _ref("OrganizationId")},
                        ]),
                    },
                }],
            },
            "Policies": [{
                "PolicyName": function,
                "PolicyDocument": {"Version": "2012-10-17", "Statement": statements},
            }],
        },
    }


def member_rule(name: str, hub_rule: dict[str, Any]) -> dict[str, Any]:
    props = hub_rule["Properties"]
    target: dict[str, Any] = {
        "Id": "HubEventBus",
        "Arn": HUB_BUS,
        "RoleArn": Tagged("!GetAtt", "EventForwarderRole.Arn"),
    }
    retry = props["Targets"][0].get("RetryPolicy")
    if retry:
        target["RetryPolicy"] = copy.deepcopy(retry)
    target["DeadLetterConfig"] = {"Arn": Tagged("!GetAtt", "ForwardDeadLetterQueue.Arn")}
    description = str(props.get("Description", name)).removeprefix("ecs-autopilot ")
    return {
        "Type": "AWS::Events::Rule",
        "Condition": "ForwardsEvents",
        "Properties": {
            "Description": f"ecs-autopilot member, forwarded to the hub: {description}",
            "State": "ENABLED",
            "EventPattern": copy.deepcopy(props["EventPattern"]),
            "Targets": [target],
        },
    }


def generate(hub: dict[str, Any]) -> dict[str, Any]:
    hub_resources = set(hub["Resources"])
    hub_parameters = hub["Parameters"]

    rules = {name: member_rule(name, r) for name, r in forwarded_rules(hub).items()}
    roles: dict[str, dict[str, Any]] = {}
    for function, (hub_role, member_id, _) in FUNCTIONS.items():
        statements = [member_statement(s) for s in fleet_statements(hub, hub_role)]
        wrong = referenced_names(statements) & hub_resources
        if wrong:
            raise SystemExit(f"{hub_role}: fleet statements name hub resources {sorted(wrong)}")
        roles[member_id] = member_role(function, statements)

    copied = sorted(n for n in referenced_names([r["Properties"]["EventPattern"] for r in rules.values()])
                    | referenced_names([r["Properties"]["Policies"] for r in roles.values()])
                    if n in hub_parameters and n not in IDENTITY_PARAMETERS)
    parameters: dict[str, Any] = dict(copy.deepcopy(IDENTITY_PARAMETERS))
    for function, (_, _, arn_parameter) in FUNCTIONS.items():
        parameters[arn_parameter] = {**ROLE_ARN_PARAMETER,
                                     "Description": f"The hub's {function} role (hub output "
                                                    f"{FUNCTIONS[function][0]}Arn)."}
    for name in copied:
        p = hub_parameters[name]
        parameters[name] = {k: copy.deepcopy(p[k]) for k in
                            ("Type", "Default", "AllowedValues", "AllowedPattern", "MinValue", "MaxValue",
                             "ConstraintDescription", "Description") if k in p}
        parameters[name]["Description"] = "Same as the hub's: " + " ".join(str(p.get("Description", "")).split())

    forwarder = {
        "Type": "AWS::IAM::Role",
        "Condition": "ForwardsEvents",
        "Properties": {
            "Description": "ecs-autopilot member: lets this Region's forwarding rules put events on the hub's bus.",
            "AssumeRolePolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [{
                    "Effect": "Allow",
                    "Principal": {"Service": "events.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": _ref("AWS::AccountId")}},
                }],
            },
            "Policies": [{
                "PolicyName": "forward-to-hub",
                "PolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [{
                        "Sid": "PutEventsOnTheHubBusOnly",
                        "Effect": "Allow",
                        "Action": "events:PutEvents",
                        "Resource": HUB_BUS,
                    }],
                },
            }],
        },
    }

    # What EventBridge could not put on the hub's bus (the bus policy refused it: another
    # OrganizationId, the hub stack gone; or the retries ran out) waits here 14 days.
    dead_letters = {
        "Type": "AWS::SQS::Queue",
        "Condition": "ForwardsEvents",
        "DeletionPolicy": "Delete",
        "UpdateReplacePolicy": "Delete",
        "Metadata": {
            "checkov": {"skip": [{
                "id": "CKV_AWS_27",
                "comment": "Encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which CKV_AWS_27 does not "
                           "recognise; not KMS because EventBridge cannot dead-letter into a queue under the "
                           "aws/sqs key.",
            }]},
            # ES6000 (queue without RedrivePolicy): this is the dead-letter queue.
            "cfn-lint": {"config": {"ignore_checks": ["ES6000"]}},
        },
        "Properties": {"SqsManagedSseEnabled": True, "MessageRetentionPeriod": 1209600},
    }
    dead_letter_policy = {
        "Type": "AWS::SQS::QueuePolicy",
        "Condition": "ForwardsEvents",
        "Properties": {
            "Queues": [_ref("ForwardDeadLetterQueue")],
            "PolicyDocument": {
                "Version": "2012-10-17",
                "Statement": [
                    {
                        "Sid": "EventBridgeRulesDeadLetter",
                        "Effect": "Allow",
                        "Principal": {"Service": "events.amazonaws.com"},
                        "Action": "sqs:SendMessage",
                        "Resource": Tagged("!GetAtt", "ForwardDeadLetterQueue.Arn"),
                        "Condition": {"ArnEquals": {"aws:SourceArn": [
                            Tagged("!GetAtt", f"{name}.Arn") for name in rules]}},
                    },
                    {
                        "Sid": "DenyInsecureTransport",
                        "Effect": "Deny",
                        "Principal": "*",
                        "Action": "sqs:*",
                        "Resource": Tagged("!GetAtt", "ForwardDeadLetterQueue.Arn"),
                        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                    },
                ],
            },
        },
    }

    outputs: dict[str, Any] = {}
    for function, (_, member_id, _) in FUNCTIONS.items():
        outputs[member_id + "Arn"] = {
            "Condition": "CreateMemberRoles",
            "Description": f"The {function} member role the hub assumes in this account.",
            "Value": Tagged("!GetAtt", f"{member_id}.Arn"),
        }
    outputs["ForwardDeadLetterQueueUrl"] = {
        "Condition": "ForwardsEvents",
        "Description": "Events this Region could not forward to the hub (not alarmed here: watch it centrally).",
        "Value": _ref("ForwardDeadLetterQueue"),
    }
    outputs["EventForwarderRoleArn"] = {
        "Condition": "ForwardsEvents",
        "Description": "The role this Region's rules forward events to the hub's bus with.",
        "Value": Tagged("!GetAtt", "EventForwarderRole.Arn"),
    }

    return {
        "AWSTemplateFormatVersion": "2010-09-09",
        "Description": "ecs-autopilot member stack (hub mode, docs/organization.md): forwards the events the hub's "
                       "rules take to the hub's event bus, and holds the roles the hub's functions assume in this "
                       "account. Generated from template.yaml.",
        "Parameters": parameters,
        "Conditions": {
            "HasExternalId": Tagged("!Not", [Tagged("!Equals", [_ref("MemberExternalId"), ""])]),
            # The hub's own account and Region has the hub's rules already: forwarding
            # there would put every event on the bus it came from.
            "HubHome": Tagged("!And", [Tagged("!Equals", [_ref("AWS::AccountId"), _ref("HubAccountId")]),
                                       Tagged("!Equals", [_ref("AWS::Region"), _ref("HubRegion")])]),
            "ForwardsEvents": Tagged("!Not", [Tagged("!Condition", "HubHome")]),
            "CreateMemberRoles": Tagged("!Or", [
                Tagged("!And", [Tagged("!Equals", [_ref("MemberRolesRegion"), ""]),
                                Tagged("!Equals", [_ref("AWS::Region"), _ref("HubRegion")])]),
                Tagged("!Equals", [_ref("AWS::Region"), _ref("MemberRolesRegion")]),
            ]),
        },
        "Resources": {"EventForwarderRole": forwarder, "ForwardDeadLetterQueue": dead_letters,
                      "ForwardDeadLetterQueuePolicy": dead_letter_policy, **rules, **roles},
        "Outputs": outputs,
    }


def render(hub_path: Path = HUB) -> str:
    body = yaml.dump(generate(load(hub_path)), Dumper=Dumper, sort_keys=False, width=100, allow_unicode=True)
    return HEADER + "\n" + body


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="fail if member.yaml differs from what template.yaml gives")
    args = parser.parse_args(argv)
    text = render()
    if args.check:
        current = MEMBER.read_text() if MEMBER.is_file() else ""
        if current != text:
            print("member_template: member.yaml is stale: run `make member-template` and commit it", file=sys.stderr)
            return 1
        print("member_template: member.yaml is up to date with template.yaml")
        return 0
    MEMBER.write_text(text)
    print(f"member_template: wrote {MEMBER.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
