"""Hub mode (issue 16, docs/organization.md), offline: template.yaml's hub additions exist
only with Accounts set and are scoped to the organization, and member.yaml forwards
exactly what the hub's rules take and grants each member role exactly its hub role's
fleet statements, trusted by that hub role only. member.yaml is generated from
template.yaml (tests/lint/member_template.py); these checks are written independently of
the generator, so a hand edit or a generator bug fails here too.
"""

from __future__ import annotations

import copy
import re
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.template import ACCOUNT, FUNCTIONS, Template

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lint"))
import member_template  # noqa: E402

T = Template.load()
M = Template.load(REPO / "member.yaml")

HUB = {"Accounts": "111111111111,222222222222", "OrganizationId": "o-a1b2c3d4e5"}
ORG = {"Accounts": "org", "OrganizationId": "o-a1b2c3d4e5"}
ROLES = {"instance-drain": "InstanceDrainRole", "ami-rollout": "AmiRolloutRole",
         "guardduty-responder": "GuardDutyResponderRole", "task-retirement": "TaskRetirementRole"}
HUB_POLICIES = {f: r.replace("Role", "HubPolicy") for f, r in ROLES.items()}
MEMBER_ROLES = {f: r.replace("Role", "MemberRole") for f, r in ROLES.items()}
HUB_ROLE_ARN_PARAMETERS = {f: "Hub" + r + "Arn" for f, r in ROLES.items()}
HUB_ONLY_PARAMETERS = {"Accounts", "OrganizationId", "MemberRolePrefix", "MemberExternalId", "Regions",
                       "FanOutMaximumConcurrency"}
HUB_VARIABLES = {"ACCOUNTS", "MEMBER_ROLE_NAME", "MEMBER_EXTERNAL_ID", "REGIONS", "FANOUT_QUEUE_URL"}
PLUMBING = ("logs:", "sqs:", "sns:", "kms:", "sts:")


def active(t: Template, name: str, params: dict[str, str], **where: str) -> bool:
    condition = t.resources[name].get("Condition")
    return condition is None or t.condition(condition, params, **where)


def statements(doc: dict[str, Any]) -> list[dict[str, Any]]:
    return list(doc["PolicyDocument"]["Statement"])


def role_statements(t: Template, role: str) -> list[dict[str, Any]]:
    return [s for p in t.resources[role]["Properties"]["Policies"] for s in statements(p)]


def actions(statement: dict[str, Any]) -> list[str]:
    a = statement["Action"]
    return [a] if isinstance(a, str) else list(a)


# -- single-account mode stays as it was -------------------------------------------------


def _single_account_view(value: Any) -> Any:
    """A template part as single-account mode deploys it: every Fn::If decided with the
    default parameters, AWS::NoValue dropped."""
    if isinstance(value, list):
        return [x for x in (_single_account_view(v) for v in value) if x is not None]
    if isinstance(value, dict):
        if set(value) == {"Fn::If"}:
            cond, a, b = value["Fn::If"]
            return _single_account_view(a if T.condition(cond) else b)
        if value == {"Ref": "AWS::NoValue"}:
            return None
        return {k: x for k, x in ((k, _single_account_view(v)) for k, v in value.items()) if x is not None}
    return value


def test_hub_resources_exist_only_with_accounts_set() -> None:
    hub_only = {n for n in T.resources if not active(T, n, {}) and active(T, n, HUB)}
    assert hub_only == {"HubEventBusPolicy", *HUB_POLICIES.values(), "AmiRolloutFanOutQueue",
                        "AmiRolloutFanOutDeadLetterQueue", "AmiRolloutFanOutQueuePolicy",
                        "AmiRolloutFanOutDeadLetterQueuePolicy", "AmiRolloutFanOutDeadLetterQueueAlarm",
                        "AmiRolloutFanOutEventSource"}
    for name in hub_only:
        assert T.resources[name]["Condition"] == "HubMode", name
    assert T.condition("HubMode", {"Accounts": "org"}) and not T.condition("HubMode", {})
    for output in ("InstanceDrainRoleArn", "AmiRolloutRoleArn", "GuardDutyResponderRoleArn",
                   "TaskRetirementRoleArn", "HubEventBusArn"):
        assert T.doc["Outputs"][output]["Condition"] == "HubMode", output


def test_single_account_mode_deploys_nothing_that_names_a_hub_parameter() -> None:
    """With the default parameters no resource, statement or variable of hub mode is left:
    the roles, functions and rules are what they were before hub mode existed."""
    for name in T.resources:
        if not active(T, name, {}):
            continue
        text = str(_single_account_view(T.resources[name]))
        for parameter in HUB_ONLY_PARAMETERS:
            assert parameter not in text, (name, parameter)
        assert "HubPolicy" not in text and "FanOut" not in text, name
    for function in FUNCTIONS:
        assert not HUB_VARIABLES & set(T.function_env(function)), function
        role = ROLES[function]
        assert T.resolve(T.resources[role]["Properties"]["ManagedPolicyArns"], {}) is None, role


def test_hub_mode_sets_the_contracts_variables_on_every_function() -> None:
    for function in FUNCTIONS:
        env = T.function_env(function, HUB)
        assert env["ACCOUNTS"] == HUB["Accounts"]
        assert env["MEMBER_ROLE_NAME"] == f"ecs-autopilot-{function}"
        assert "MEMBER_EXTERNAL_ID" not in env, "unset when MemberExternalId is empty"
        with_id = T.function_env(function, {**HUB, "MemberExternalId": "ops-7f3a", "MemberRolePrefix": "acme"})
        assert with_id["MEMBER_EXTERNAL_ID"] == "ops-7f3a"
        assert with_id["MEMBER_ROLE_NAME"] == f"acme-{function}"
        if function != "ami-rollout":
            assert not {"REGIONS", "FANOUT_QUEUE_URL"} & set(env), function
    env = T.function_env("ami-rollout", HUB)
    assert env["REGIONS"] == "us-east-1", "empty Regions: the hub's own Region"
    assert T.function_env("ami-rollout", {**HUB, "Regions": "us-east-1,eu-west-1"})["REGIONS"] == "us-east-1,eu-west-1"
    assert env["FANOUT_QUEUE_URL"].endswith("AmiRolloutFanOutQueue")
    assert T.function("ami-rollout")["Properties"]["Environment"]["Variables"]["FANOUT_QUEUE_URL"]["Fn::If"][1] == {
        "Ref": "AmiRolloutFanOutQueue"}


# -- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize("parameter, good, bad", [
    ("Accounts", ["", "org", "111111111111", "111111111111,222222222222"],
     ["1111", "org,111111111111", "111111111111, 222222222222", "111111111111,", "ORG", "all"]),
    ("OrganizationId", ["", "o-a1b2c3d4e5", "o-" + "a" * 32], ["o-short", "r-a1b2c3d4e5", "o-A1B2C3D4E5"]),
    ("MemberRolePrefix", ["ecs-autopilot", "acme.ops", "a" * 44], ["", "a" * 45, "has space", "a/b"]),
    ("MemberExternalId", ["", "ab", "ops:7f3a/x=1", "x" * 1224], ["x", "x" * 1225, "with space"]),
    ("Regions", ["", "us-east-1", "us-east-1,eu-west-1,ap-southeast-2", "us-gov-west-1"],
     ["us-east-1, eu-west-1", "US-EAST-1", "everywhere", "us-east-1,"]),
])
def test_hub_parameters_accept_what_the_contract_allows(parameter: str, good: list[str], bad: list[str]) -> None:
    pattern = str(T.parameters[parameter]["AllowedPattern"])
    for value in good:
        assert re.fullmatch(pattern, value), (parameter, value)
    for value in bad:
        assert not re.fullmatch(pattern, value), (parameter, value)
    assert T.parameters[parameter].get("Default", "") == ("ecs-autopilot" if parameter == "MemberRolePrefix" else "")


def test_member_role_names_fit_iams_64_characters() -> None:
    longest = max(FUNCTIONS, key=len)
    (limit,) = re.findall(r"\{1,(\d+)\}\$$", str(T.parameters["MemberRolePrefix"]["AllowedPattern"]))
    assert int(limit) + 1 + len(longest) == 64


def test_fan_out_concurrency_is_in_the_event_sources_range() -> None:
    p = T.parameters["FanOutMaximumConcurrency"]
    assert (int(p["MinValue"]), int(p["MaxValue"]), int(p["Default"])) == (2, 1000, 5)


def test_hub_mode_without_an_organization_id_is_refused() -> None:
    rule = T.doc["Rules"]["HubModeNeedsOrganizationId"]
    assert rule["RuleCondition"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "Accounts"}, ""]}]}
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "OrganizationId"}, ""]}]}


# -- the hub's bus and roles ----------------------------------------------------------------


def test_the_hub_bus_admits_put_events_from_the_organization_only() -> None:
    props = T.resources["HubEventBusPolicy"]["Properties"]
    assert props["EventBusName"] == "default"
    statement = props["Statement"]
    assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Allow", "*", "events:PutEvents")
    assert statement["Condition"] == {"StringEquals": {"aws:PrincipalOrgID": {"Ref": "OrganizationId"}}}
    assert T.resolve(statement["Resource"], HUB) == "arn:aws:events:us-east-1:123456789012:event-bus/default"
    assert T.resolve(T.doc["Outputs"]["HubEventBusArn"]["Value"], HUB) == T.resolve(statement["Resource"], HUB)


@pytest.mark.parametrize("function", sorted(ROLES))
def test_each_hub_role_may_assume_only_its_own_member_role_inside_the_organization(function: str) -> None:
    role = T.resources[ROLES[function]]["Properties"]
    policy = HUB_POLICIES[function]
    assert role["ManagedPolicyArns"] == {"Fn::If": ["HubMode", [{"Ref": policy}], {"Ref": "AWS::NoValue"}]}
    doc = T.resources[policy]["Properties"]
    assume = [s for s in statements(doc) if "Fn::If" not in s and "sts:AssumeRole" in actions(s)]
    assert len(assume) == 1
    (s,) = assume
    assert actions(s) == ["sts:AssumeRole"] and s["Effect"] == "Allow"
    assert s["Resource"] == {"Fn::Sub": f"arn:${{AWS::Partition}}:iam::*:role/${{MemberRolePrefix}}-{function}"}
    assert s["Condition"] == {"StringEquals": {"aws:ResourceOrgID": {"Ref": "OrganizationId"}}}
    # The role the hub assumes is the one the function is told about and the member creates.
    name = T.function_env(function, {**HUB, "MemberRolePrefix": "acme"})["MEMBER_ROLE_NAME"]
    assert T.resolve(s["Resource"], {**HUB, "MemberRolePrefix": "acme"}) == f"arn:aws:iam::*:role/{name}"
    member = M.resources[MEMBER_ROLES[function]]["Properties"]
    assert M.resolve(member["RoleName"], {"MemberRolePrefix": "acme"}) == name
    # Nothing else but ami-rollout's fan-out rights.
    others = {a for st in statements(doc) for a in actions(st if "Fn::If" not in st else st["Fn::If"][1])}
    expected = {"sts:AssumeRole"} | ({"sqs:SendMessage", "sqs:ReceiveMessage", "sqs:DeleteMessage",
                                      "sqs:GetQueueAttributes", "organizations:ListAccounts"}
                                     if function == "ami-rollout" else set())
    assert others == expected


def test_ami_rollout_may_list_the_organizations_accounts_only_with_accounts_org() -> None:
    doc = T.resources["AmiRolloutHubPolicy"]["Properties"]["PolicyDocument"]

    def granted(params: dict[str, str]) -> set[str]:
        resolved = [s for s in T.resolve(doc["Statement"], params) if s is not None]
        return {a for s in resolved for a in actions(s)}

    assert "organizations:ListAccounts" in granted(ORG)
    assert "organizations:ListAccounts" not in granted(HUB)
    assert T.condition("AccountsFromOrganization", ORG) and not T.condition("AccountsFromOrganization", HUB)


def test_the_fan_out_queue_feeds_ami_rollout_with_bounded_concurrency() -> None:
    queue = T.resources["AmiRolloutFanOutQueue"]["Properties"]
    timeout = int(T.function_property("ami-rollout", "Timeout"))
    mapping = T.resources["AmiRolloutFanOutEventSource"]["Properties"]
    assert mapping["FunctionName"] == {"Ref": "AmiRolloutFunction"}
    assert mapping["EventSourceArn"] == {"Fn::GetAtt": ["AmiRolloutFanOutQueue", "Arn"]}
    assert mapping["ScalingConfig"] == {"MaximumConcurrency": {"Ref": "FanOutMaximumConcurrency"}}
    assert "ReportBatchItemFailures" in mapping["FunctionResponseTypes"]
    # AWS: visibility timeout at least six times the function timeout plus the batching window.
    assert int(queue["VisibilityTimeout"]) >= 6 * timeout + int(mapping.get("MaximumBatchingWindowInSeconds", 0))
    assert int(mapping["BatchSize"]) == 1, "one (account, Region) check per invocation"
    # Encrypted, dead-lettered and alarmed like the stack's other queues.
    assert queue["SqsManagedSseEnabled"] is True
    assert queue["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": ["AmiRolloutFanOutDeadLetterQueue", "Arn"]}
    dlq = T.resources["AmiRolloutFanOutDeadLetterQueue"]["Properties"]
    assert dlq["SqsManagedSseEnabled"] is True and int(dlq["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])
    alarm = T.resources["AmiRolloutFanOutDeadLetterQueueAlarm"]["Properties"]
    assert alarm["Dimensions"] == [{"Name": "QueueName", "Value": {"Fn::GetAtt": ["AmiRolloutFanOutDeadLetterQueue", "QueueName"]}}]
    assert alarm["AlarmActions"] == [{"Ref": "NotifyTopic"}]
    for policy in ("AmiRolloutFanOutQueuePolicy", "AmiRolloutFanOutDeadLetterQueuePolicy"):
        (deny,) = statements(T.resources[policy]["Properties"])
        assert deny["Effect"] == "Deny" and deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    # The role sends to it and Lambda polls it, on that queue only.
    hub = {s["Sid"]: s for s in statements(T.resources["AmiRolloutHubPolicy"]["Properties"]) if "Sid" in s}
    for sid in ("FanOut", "ConsumeFanOutQueue"):
        assert hub[sid]["Resource"] == {"Fn::GetAtt": ["AmiRolloutFanOutQueue", "Arn"]}, sid


# -- member.yaml ---------------------------------------------------------------------------


def test_member_yaml_is_what_template_yaml_generates() -> None:
    assert (REPO / "member.yaml").read_text() == member_template.render(), (
        "member.yaml is stale: run `make member-template` and commit it")


def test_the_member_template_is_plain_cloudformation() -> None:
    text = (REPO / "member.yaml").read_text()
    assert "Transform" not in M.doc and "Globals" not in M.doc
    assert not [n for n, r in M.resources.items() if r["Type"].startswith("AWS::Serverless::")]
    assert "AWS::Serverless" not in text
    assert M.doc["AWSTemplateFormatVersion"] == "2010-09-09"


def hub_forwarded_rules() -> dict[str, dict[str, Any]]:
    return {n: r for n, r in T.resources.items()
            if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" not in r["Properties"]}


def rule_problems(hub: Template, member: Template) -> list[str]:
    """How the member's rules differ from what the hub's non-schedule rules take."""
    problems = []
    hub_rules = {n: r for n, r in hub.resources.items()
                 if r["Type"] == "AWS::Events::Rule" and "ScheduleExpression" not in r["Properties"]}
    member_rules = {n: r for n, r in member.resources.items() if r["Type"] == "AWS::Events::Rule"}
    if set(hub_rules) != set(member_rules):
        problems.append(f"rules: hub {sorted(hub_rules)} member {sorted(member_rules)}")
    for name in set(hub_rules) & set(member_rules):
        if hub_rules[name]["Properties"]["EventPattern"] != member_rules[name]["Properties"]["EventPattern"]:
            problems.append(f"{name}: the member's pattern is not the hub's")
    return problems


def test_member_rules_forward_exactly_what_the_hubs_non_schedule_rules_take() -> None:
    assert rule_problems(T, M) == []
    assert {"AmiRolloutScheduleRule", "AmiRolloutWindowGuardRule"}.isdisjoint(M.resources)
    assert len(hub_forwarded_rules()) == 7
    for name in hub_forwarded_rules():
        props = M.resources[name]["Properties"]
        (target,) = props["Targets"]
        assert target["Arn"] == {"Fn::Sub": "arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/default"}
        assert target["RoleArn"] == {"Fn::GetAtt": ["EventForwarderRole", "Arn"]}
        assert target["DeadLetterConfig"] == {"Arn": {"Fn::GetAtt": ["ForwardDeadLetterQueue", "Arn"]}}
        assert props["State"] == "ENABLED"
    # The parameters the patterns name are the hub's, with the hub's constraints.
    for name in ("LifecycleHookNames", "AmiRolloutParameterPrefix"):
        for key in ("Type", "Default", "AllowedPattern"):
            assert M.parameters[name][key] == T.parameters[name][key], (name, key)


def test_a_member_pattern_that_drifts_from_the_hubs_is_caught() -> None:
    drifted = Template(copy.deepcopy(M.doc))
    drifted.doc["Resources"]["SpotInterruptionRule"]["Properties"]["EventPattern"]["detail-type"].append("Other")
    del drifted.doc["Resources"]["HealthRetirementRule"]
    problems = rule_problems(T, drifted)
    assert any("SpotInterruptionRule" in p for p in problems) and any("HealthRetirementRule" in p for p in problems)


def test_the_forwarder_may_put_events_on_the_hubs_bus_only() -> None:
    role = M.resources["EventForwarderRole"]["Properties"]
    (trust,) = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "events.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    (policy,) = role["Policies"]
    (s,) = statements(policy)
    assert (s["Effect"], s["Action"]) == ("Allow", "events:PutEvents")
    assert s["Resource"] == {"Fn::Sub": "arn:${AWS::Partition}:events:${HubRegion}:${HubAccountId}:event-bus/default"}


def _any_region(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"Fn::Sub"} and isinstance(value["Fn::Sub"], str):
            return {"Fn::Sub": value["Fn::Sub"].replace("${AWS::Region}", "*")}
        return {k: _any_region(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_any_region(v) for v in value]
    return value


def fleet(hub: Template, role: str) -> list[dict[str, Any]]:
    return [s for s in role_statements(hub, role) if not all(a.startswith(PLUMBING) for a in actions(s))]


def statement_problems(hub: Template, member: Template, function: str) -> list[str]:
    """How a member role's statements differ from its hub role's fleet statements, each
    for every Region of the member account (`${AWS::Region}` -> `*`, no
    aws:RequestedRegion)."""
    problems = []
    expected = {}
    for s in fleet(hub, ROLES[function]):
        s = _any_region(copy.deepcopy(s))
        for operator in list(s.get("Condition", {})):
            s["Condition"][operator].pop("aws:RequestedRegion", None)
            if not s["Condition"][operator]:
                del s["Condition"][operator]
        if s.get("Condition") == {}:
            del s["Condition"]
        expected[s["Sid"]] = s
    got = {s["Sid"]: s for s in role_statements(member, MEMBER_ROLES[function])}
    for sid in expected.keys() - got.keys():
        problems.append(f"{function}: member role lacks {sid}")
    for sid in got.keys() - expected.keys():
        problems.append(f"{function}: member role grants {sid}, which the hub role doesn't")
    for sid in expected.keys() & got.keys():
        if expected[sid] != got[sid]:
            problems.append(f"{function}: {sid} differs: hub {expected[sid]} member {got[sid]}")
    return problems


@pytest.mark.parametrize("function", sorted(ROLES))
def test_member_roles_grant_their_hub_roles_fleet_statements_and_nothing_else(function: str) -> None:
    assert statement_problems(T, M, function) == []
    granted = [a for s in role_statements(M, MEMBER_ROLES[function]) for a in actions(s)]
    assert granted and not [a for a in granted if a.startswith(PLUMBING)], "no hub plumbing in a member role"
    assert not [a for a in granted if "*" in a.split(":")[0]], "no * services"
    text = str(M.resources[MEMBER_ROLES[function]]["Properties"]["Policies"])
    assert "AWS::Region" not in text, "a member role serves every Region of its account"


def test_a_hub_statement_missing_from_the_member_is_caught() -> None:
    hub = Template(copy.deepcopy(T.doc))
    policy = hub.doc["Resources"]["GuardDutyResponderRole"]["Properties"]["Policies"][0]["PolicyDocument"]
    policy["Statement"].append({"Sid": "NewFleetRight", "Effect": "Allow", "Action": "ec2:StopInstances",
                                "Resource": {"Fn::Sub": "arn:${AWS::Partition}:ec2:${AWS::Region}:${AWS::AccountId}:instance/*"}})
    assert statement_problems(hub, M, "guardduty-responder") == ["guardduty-responder: member role lacks NewFleetRight"]
    changed = Template(copy.deepcopy(T.doc))
    (s,) = [s for s in role_statements(changed, "TaskRetirementRole") if s["Sid"] == "RedeployEcsServices"]
    s["Action"] = ["ecs:UpdateService", "ecs:DeleteService"]
    assert [p.split(":")[1].strip() for p in statement_problems(changed, M, "task-retirement")] == [
        "RedeployEcsServices differs"]


def test_the_generator_follows_template_yaml(tmp_path: Path) -> None:
    """The drift check `make lint` runs: a hub change shows up in the generated member."""
    text = (REPO / "template.yaml").read_text().replace("- EC2 Spot Instance Interruption Warning",
                                                         "- EC2 Spot Instance Interruption Warning\n          - Extra")
    (tmp_path / "template.yaml").write_text(text)
    generated = yaml.load(member_template.render(tmp_path / "template.yaml"), Loader=member_template.Loader)  # noqa: S506
    assert generated["Resources"]["SpotInterruptionRule"]["Properties"]["EventPattern"]["detail-type"][-1] == "Extra"
    assert member_template.render(tmp_path / "template.yaml") != (REPO / "member.yaml").read_text()


@pytest.mark.parametrize("function", sorted(ROLES))
def test_member_roles_trust_only_their_hub_role_inside_the_organization(function: str) -> None:
    role = M.resources[MEMBER_ROLES[function]]
    props = role["Properties"]
    assert props["RoleName"] == {"Fn::Sub": f"${{MemberRolePrefix}}-{function}"}
    assert int(props["MaxSessionDuration"]) == 3600
    (trust,) = props["AssumeRolePolicyDocument"]["Statement"]
    assert (trust["Effect"], trust["Action"]) == ("Allow", "sts:AssumeRole")
    assert trust["Principal"] == {"AWS": {"Fn::Sub": "arn:${AWS::Partition}:iam::${HubAccountId}:root"}}
    condition = trust["Condition"]
    assert condition["ArnEquals"] == {"aws:PrincipalArn": {"Ref": HUB_ROLE_ARN_PARAMETERS[function]}}
    base = {"aws:PrincipalOrgID": "o-a1b2c3d4e5"}
    params = {"OrganizationId": "o-a1b2c3d4e5", "HubAccountId": "999999999999", "HubRegion": "us-east-1"}
    assert M.resolve(condition["StringEquals"], params) == base
    assert M.resolve(condition["StringEquals"], {**params, "MemberExternalId": "ops-7f3a"}) == {
        **base, "sts:ExternalId": "ops-7f3a"}
    assert set(condition) == {"ArnEquals", "StringEquals"}
    # The hub role ARN parameter is what the hub outputs.
    assert f"{ROLES[function]}Arn" in str(M.parameters[HUB_ROLE_ARN_PARAMETERS[function]]["Description"])
    assert T.doc["Outputs"][f"{ROLES[function]}Arn"]["Value"] == {"Fn::GetAtt": [ROLES[function], "Arn"]}


def test_member_roles_are_created_once_per_account_and_rules_everywhere_but_the_hubs_home() -> None:
    member = {"HubAccountId": "999999999999", "HubRegion": "eu-west-1", "OrganizationId": "o-a1b2c3d4e5"}
    roles = [n for n, r in M.resources.items() if r["Type"] == "AWS::IAM::Role" and n != "EventForwarderRole"]
    rules = [n for n, r in M.resources.items() if r["Type"] == "AWS::Events::Rule"]
    assert len(roles) == 4
    # IAM is global: the roles come from one Region's stack instance.
    assert all(active(M, n, member, region="eu-west-1") for n in roles)
    assert not any(active(M, n, member, region="us-east-1") for n in roles)
    assert all(active(M, n, {**member, "MemberRolesRegion": "us-east-1"}, region="us-east-1") for n in roles)
    assert not any(active(M, n, {**member, "MemberRolesRegion": "us-east-1"}, region="eu-west-1") for n in roles)
    # Rules forward from every Region of a member account ...
    for region in ("eu-west-1", "us-east-1"):
        assert all(active(M, n, member, region=region) for n in [*rules, "EventForwarderRole", "ForwardDeadLetterQueue"])
    # ... and from the hub's account too, except in the hub's own Region (its rules are there).
    home = {**member, "HubAccountId": ACCOUNT}
    assert not any(active(M, n, home, region="eu-west-1") for n in [*rules, "EventForwarderRole"])
    assert all(active(M, n, home, region="us-east-1") for n in rules)


def test_member_parameters_copied_from_the_hub_keep_the_hubs_constraints() -> None:
    copied = [n for n in M.parameters if n in T.parameters and n not in HUB_ONLY_PARAMETERS]
    assert sorted(copied) == ["AmiRolloutInstanceRolePattern", "AmiRolloutParameterPrefix",
                              "GuardDutyQuarantineSecurityGroup", "GuardDutyResponderClusters", "LifecycleHookNames"]
    for name in copied:
        for key in ("Type", "Default", "AllowedPattern", "AllowedValues"):
            assert M.parameters[name].get(key) == T.parameters[name].get(key), (name, key)
    for name in ("MemberRolePrefix", "MemberExternalId"):
        for key in ("Default", "AllowedPattern"):
            assert M.parameters[name].get(key) == T.parameters[name].get(key), (name, key)


# --------------------------------------------------------------------------
# the least-privilege check of hub mode (harness.iam.hub_privilege_problems), which
# test_organization.py applies to every call its functions make
# --------------------------------------------------------------------------


def _call(service: str, operation: str, *, assumed: bool, **params: Any) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(service=service, operation=operation, params=params, assumed=assumed)


def test_the_hub_least_privilege_check_judges_member_calls_by_member_yaml_and_hub_calls_by_the_hub_role():
    from harness.iam import hub_privilege_problems

    fine = [
        _call("sts", "AssumeRole", assumed=False, RoleArn="arn:aws:iam::222233334444:role/ecs-autopilot-ami-rollout"),
        _call("sqs", "SendMessageBatch", assumed=False),  # authorized as sqs:SendMessage (HubPolicy)
        _call("autoscaling", "DescribeAutoScalingGroups", assumed=True),
        _call("sns", "Publish", assumed=False),
    ]
    assert hub_privilege_problems("ami-rollout", fine) == []
    wrong = [
        # the topic is the hub's: a member role has no sns:Publish
        _call("sns", "Publish", assumed=True),
        # another function's member role is out of this one's reach
        _call("sts", "AssumeRole", assumed=False, RoleArn="arn:aws:iam::222233334444:role/ecs-autopilot-task-retirement"),
        # a launch-template refresh implies ec2:RunInstances & co. in the member role too
        _call("autoscaling", "StartInstanceRefresh", assumed=True,
              **{"DesiredConfiguration.LaunchTemplate.LaunchTemplateId": "lt-1"}),
    ]
    problems = hub_privilege_problems("ami-rollout", wrong)
    assert any("sns:Publish" in p and "member role" in p for p in problems), problems
    assert any("ecs-autopilot-task-retirement" in p for p in problems), problems
    assert not any("StartInstanceRefresh" in p for p in problems), problems  # member.yaml grants the implied set
    assert len(problems) == 2, problems
