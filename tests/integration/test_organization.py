"""Organization scale (issue 16; the hub contract, with the lead's changes: the hub's own
account outside its Region goes through its member role, metric names are lower case):
the real binaries in hub mode against an emulator with several accounts.

The hub is moto's default account (123456789012), where the functions run with plain
credentials; member accounts are fresh 12-digit ids whose resources the test seeds as
their owner would (harness.accounts), and which the functions can only reach through STS
AssumeRole into the member role. The emulator refuses AssumeRole into a role that does
not exist or whose trust policy doesn't let the hub in, and records every AssumeRole per
target account (GET /_autopilot/assume-role-calls). Every function talks through an
AwsProxy, which knows which account each call's credentials act in.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from harness import accounts as ac
from harness import fleet as fl
from harness.ami_rollout_helpers import fresh_region
from harness.delivery import FunctionQueue
from harness.events import ecs_retirement_event, finding_event, scheduled_event
from harness.functions import SKIP_DELAYS, FunctionUnderTest
from harness.guardduty_responder_helpers import service_task_on, task_of
from harness.iam import hub_privilege_problems
from harness.notifications import Inbox
from harness.runtime_api import LambdaProcess
from harness.sqs_pump import pump
from harness.task_retirement_helpers import deployment_ids

HUB = ac.HUB
# Outside the hub: only what the contract keeps in the hub (SNS, SQS queues) and STS.
HUB_SERVICES = {"sts", "sns", "sqs"}
FLEET_SERVICES = {"ecs", "ec2", "autoscaling", "ssm"}


def role(account: str, function: str) -> str:
    return ac.role_arn(account, ac.member_role_name(function))


def cannot_assume(account: str, function: str) -> str:
    """The contract's error text for a failed AssumeRole."""
    return f"cannot assume {role(account, function)} for account {account}"


def logs(fn: LambdaProcess, message: str) -> list[dict[str, Any]]:
    return [j for j in fn.json_logs() if j.get("message") == message]


@pytest.fixture
def start(emulator, proxy):
    """start(function, accounts, **env) -> LambdaProcess in hub mode, talking through the
    proxy, ready (its cold start done) and with the proxy's log cleared.

    When the test is over, every call its function made (the proxy's whole history) passes
    the least-privilege check of hub mode: calls with member credentials are granted by
    member.yaml's role of that function, the others by its hub role and HubPolicy, and it
    assumed only its own member role (harness.iam.hub_privilege_problems)."""
    procs: list[LambdaProcess] = []
    functions: set[str] = set()

    def run(function: str, accounts: Any, **env: str) -> LambdaProcess:
        if accounts is not None:
            env["ACCOUNTS"] = ac.accounts_value(accounts)
        fn = FunctionUnderTest.start(emulator, function, endpoint=proxy.url, timeout=180,
                                     topic=env.pop("NOTIFY_TOPIC_ARN", None), **env).fn
        procs.append(fn)
        functions.add(function)
        assert fn.wait_ready(), fn.output()
        proxy.clear_calls()
        return fn

    yield run
    for p in procs:
        p.stop()
    # One function per test, so every call is its; the harness seeds around the proxy.
    assert len(functions) <= 1, functions
    for function in functions:
        problems = hub_privilege_problems(function, proxy.history())
        assert not problems, "\n".join(problems)


@pytest.fixture
def inbox(emulator):
    return Inbox.create(emulator, prefix="org")


def twin_fleets(emulator, region: str, member: str, **seed: Any) -> tuple[fl.Fleet, fl.Fleet]:
    """The same cluster name, group name and services in the hub and in ``member``."""
    name = fl.unique("org")
    seed = {"instances": 1, "services": ["web"], "tasks_per_instance": 2, **seed}
    hub = fl.seed_cluster(emulator.url, region, name=name, account=HUB, **seed)
    other = fl.seed_cluster(emulator.url, region, name=name, account=member, **seed)
    return hub, other


def member_finding(fleet: fl.Fleet, task: str, *, envelope_account: str = HUB) -> dict[str, Any]:
    """A GuardDuty finding about ``fleet``'s task as a GuardDuty administrator (the hub)
    receives it: the envelope names the administrator, ``detail.accountId`` the member."""
    event = finding_event(fleet, task)
    event["account"] = envelope_account
    event["detail"]["accountId"] = fleet.account
    event["detail"]["region"] = fleet.region
    return event


# --------------------------------------------------------------------------
# acting in the right account
# --------------------------------------------------------------------------


def test_a_finding_in_a_member_account_stops_its_task_there_and_never_touches_the_hub(emulator, start, proxy, inbox):
    region = emulator.region
    b = ac.new_account()
    ac.create_member_role(emulator.url, b, "guardduty-responder")
    hub_fleet, b_fleet = twin_fleets(emulator, region, b)
    task_b = service_task_on(b_fleet, b_fleet.instances[0])
    hub_tasks = [t["taskArn"] for t in fl.all_tasks(hub_fleet)]
    fn = start("guardduty-responder", [b], NOTIFY_TOPIC_ARN=inbox.topic_arn)

    result = fn.invoke(member_finding(b_fleet, task_b))

    assert result.ok, result.error
    assert task_of(b_fleet, task_b)["lastStatus"] == "STOPPED", fn.output()[-3000:]
    assert {t["lastStatus"] for t in fl.describe_tasks(hub_fleet, hub_tasks)} == {"RUNNING"}
    assert [ci["status"] for ci in hub_fleet.container_instances()] == ["ACTIVE"]
    assert hub_fleet.group_instance_ids() == [i.ec2_instance_id for i in hub_fleet.instances]
    # Every fleet call acted in B (with B's credentials, in the event's Region); the hub
    # account saw only STS and the notification.
    fleet_calls = [c for c in proxy.calls() if c.service in FLEET_SERVICES]
    assert fleet_calls and {(c.account, c.region) for c in fleet_calls} == {(b, region)}
    assert {c.service for c in proxy.calls(account=HUB)} <= HUB_SERVICES, proxy.counts()
    (assumed,) = proxy.assume_role_calls()
    assert assumed.params["RoleArn"] == role(b, "guardduty-responder")
    assert assumed.params["RoleSessionName"] == "ecs-autopilot-guardduty-responder"
    assert "ExternalId" not in assumed.params
    (line,) = logs(fn, "assumed member role")
    assert (line["account"], line["role_arn"]) == (b, role(b, "guardduty-responder"))
    (note,) = inbox.read()
    assert (note.attributes["account"], note.attributes["region"]) == (b, region)
    assert (note.context["account"], note.context["region"]) == (b, region)
    last = note.description.rstrip().splitlines()[-1]
    assert b in last and region in last, "in hub mode the description ends naming account and Region"
    metric = next(j for j in fn.json_logs() if "_aws" in j)
    assert (metric["account"], metric["region"]) == (b, region)
    first, *more = metric["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert first == ["function", "action", "outcome"], "the set the alarms use stays"
    assert more == [["function", "action", "outcome", "account", "region"]]


def test_an_event_from_an_account_outside_ACCOUNTS_is_skipped_with_no_call_at_all(emulator, start, proxy, inbox):
    region = emulator.region
    b, outsider = ac.new_account(), ac.new_account()
    for account in (b, outsider):
        ac.create_member_role(emulator.url, account, "guardduty-responder")
    fleet = fl.seed_cluster(emulator.url, region, instances=1, services=["web"], account=outsider)
    task = service_task_on(fleet, fleet.instances[0])
    fn = start("guardduty-responder", [b], NOTIFY_TOPIC_ARN=inbox.topic_arn)
    event = member_finding(fleet, task, envelope_account=outsider)

    result = fn.invoke(event)

    assert result.ok, result.error
    assert proxy.calls() == [], proxy.counts()
    assert ac.assume_role_calls(emulator.url, account=outsider) == []
    assert task_of(fleet, task)["lastStatus"] == "RUNNING"
    assert inbox.read() == []
    (skip,) = logs(fn, "skipped: account not in ACCOUNTS")
    assert skip["level"] == "WARN"
    assert (skip["account"], skip["region"], skip["event_id"]) == (outsider, region, event["id"])


def test_a_missing_member_role_fails_that_accounts_event_clearly_and_never_caches_it(emulator, start, inbox):
    region = emulator.region
    b, no_role = ac.new_account(), ac.new_account()
    ac.create_member_role(emulator.url, b, "guardduty-responder")
    fleets = {a: fl.seed_cluster(emulator.url, region, instances=1, services=["web"], account=a) for a in (b, no_role)}
    tasks = {a: service_task_on(f, f.instances[0]) for a, f in fleets.items()}
    fn = start("guardduty-responder", [b, no_role], NOTIFY_TOPIC_ARN=inbox.topic_arn)

    failed = fn.invoke(member_finding(fleets[no_role], tasks[no_role]))
    ok = fn.invoke(member_finding(fleets[b], tasks[b]))
    again = fn.invoke(member_finding(fleets[no_role], tasks[no_role]))

    assert not failed.ok and not again.ok
    message = json.dumps(failed.error)
    assert cannot_assume(no_role, "guardduty-responder") in message, failed.error
    assert "AccessDenied" in message, failed.error
    assert ok.ok, ok.error
    assert task_of(fleets[b], tasks[b])["lastStatus"] == "STOPPED"
    assert task_of(fleets[no_role], tasks[no_role])["lastStatus"] == "RUNNING"
    denied = ac.assume_role_calls(emulator.url, account=no_role)
    assert [c["outcome"] for c in denied] == ["denied", "denied"], "a failure is never cached"
    # People hear of it, once per failed attempt, naming the account it couldn't reach.
    unreachable = [n for n in inbox.read() if n.action == "assume-role"]
    assert [(n.outcome, n.attributes["account"]) for n in unreachable] == [("failed", no_role)] * 2
    assert cannot_assume(no_role, "guardduty-responder") in unreachable[0].description
    assert [c["outcome"] for c in ac.assume_role_calls(emulator.url, account=b)] == ["allowed"]


def test_in_one_batch_a_missing_member_role_fails_only_that_accounts_message(emulator, start):
    """instance-drain takes both lifecycle events in one SQS batch: the member whose role
    is missing has its message reported as a batch item failure (retried, then
    dead-lettered); the other's hook is completed in its own account."""
    region = emulator.region
    b, no_role = ac.new_account(), ac.new_account()
    ac.create_member_role(emulator.url, b, "instance-drain")
    fleets = {a: fl.seed_cluster(emulator.url, region, instances=2, services=["web"], tasks_per_instance=0, account=a)
              for a in (b, no_role)}
    sqs = emulator.client("sqs")
    queue = FunctionQueue.create(sqs, "org-drain", max_receive=2, tags=SKIP_DELAYS)
    inbox = Inbox.create(emulator, prefix="org-drain")
    fn = start("instance-drain", [b, no_role], NOTIFY_TOPIC_ARN=inbox.topic_arn, DRAIN_QUEUE_URL=queue.url,
               DRAIN_POLL_SECONDS="5")
    events = {a: fl.fire_lifecycle(emulator.url, f, f.instances[0]) for a, f in fleets.items()}
    assert events[b]["account"] == b and events[no_role]["account"] == no_role
    ids = {a: queue.send(e) for a, e in events.items()}

    (batch,) = pump(sqs, queue.url, fn, max_batches=1)

    assert sorted(batch.message_ids) == sorted(ids.values()), "one batch with both"
    assert batch.failed_ids == [ids[no_role]]
    done = fl.lifecycle_actions(emulator.url, region, account=b, token=events[b]["detail"]["LifecycleActionToken"])
    assert [(a["status"], a["result"]) for a in done] == [("completed", "CONTINUE")]
    held = fl.lifecycle_actions(emulator.url, region, account=no_role,
                                token=events[no_role]["detail"]["LifecycleActionToken"])
    assert [a["status"] for a in held] == ["active"]
    said = [json.dumps(line.json or line.text) for line in batch.invoke.logs]
    assert any(cannot_assume(no_role, "instance-drain") in s and "AccessDenied" in s for s in said), said


def test_credentials_are_assumed_once_per_account_and_reused_across_events_and_regions(emulator, start, proxy, inbox):
    b = ac.new_account()
    ac.create_member_role(emulator.url, b, "guardduty-responder", external_id="hub-7f3a")
    regions = ["us-west-2", emulator.region]  # the first event is in another Region than the hub's
    fleets = [fl.seed_cluster(emulator.url, r, instances=2, services=["web"], tasks_per_instance=1, account=b)
              for r in regions]
    fn = start("guardduty-responder", [b], NOTIFY_TOPIC_ARN=inbox.topic_arn, MEMBER_EXTERNAL_ID="hub-7f3a",
               QUARANTINE_HOST="false", MAX_STOPS_PER_SERVICE="100")
    tasks = [(f, service_task_on(f, i)) for f in fleets for i in f.instances]  # 2 per Region

    results = [fn.invoke(member_finding(f, t)) for f, t in tasks]

    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    assert {task_of(f, t)["lastStatus"] for f, t in tasks} == {"STOPPED"}
    (call,) = ac.assume_role_calls(emulator.url, account=b)
    assert (call["outcome"], call["external_id"]) == ("allowed", "hub-7f3a")
    (through,) = proxy.assume_role_calls()
    assert through.region == emulator.region, "STS in the hub's Region"
    assert len(logs(fn, "assumed member role")) == 1
    used = {c.region for c in proxy.calls() if c.service in FLEET_SERVICES}
    assert used == set(regions) and {c.account for c in proxy.calls() if c.service in FLEET_SERVICES} == {b}


def test_the_hubs_own_account_uses_its_own_role_in_its_region_and_its_member_role_elsewhere(
        emulator, start, proxy, inbox):
    """Contract, changes after the start: the hub roles are bound to the hub's Region; in
    its other Regions the hub account is reached through its member role, like a member."""
    ac.ensure_member_role(emulator.url, HUB, "guardduty-responder")
    home = fl.seed_cluster(emulator.url, emulator.region, instances=1, services=["web"], tasks_per_instance=2)
    away = fl.seed_cluster(emulator.url, "us-west-2", instances=1, services=["web"], tasks_per_instance=2)
    tasks = {f.region: service_task_on(f, f.instances[0]) for f in (home, away)}
    fn = start("guardduty-responder", [ac.new_account()], NOTIFY_TOPIC_ARN=inbox.topic_arn, QUARANTINE_HOST="false")

    at_home = fn.invoke(member_finding(home, tasks[home.region]))

    assert at_home.ok, at_home.error
    assert task_of(home, tasks[home.region])["lastStatus"] == "STOPPED"
    assert proxy.assume_role_calls() == [] and not logs(fn, "assumed member role")
    home_calls = [c for c in proxy.calls() if c.service in FLEET_SERVICES]
    assert {(c.account, c.region, c.access_key) for c in home_calls} == {(HUB, home.region, "testing")}, "its own role"
    proxy.clear_calls()

    elsewhere = fn.invoke(member_finding(away, tasks[away.region]))

    assert elsewhere.ok, elsewhere.error
    assert task_of(away, tasks[away.region])["lastStatus"] == "STOPPED"
    (assumed,) = proxy.assume_role_calls()
    assert assumed.params["RoleArn"] == role(HUB, "guardduty-responder")
    away_calls = [c for c in proxy.calls() if c.service in FLEET_SERVICES]
    assert {(c.account, c.region) for c in away_calls} == {(HUB, away.region)}
    assert "testing" not in {c.access_key for c in away_calls}, "the member role's credentials"
    notes = inbox.read()
    assert [(n.attributes["account"], n.attributes["region"]) for n in notes] == [
        (HUB, home.region), (HUB, away.region)]


def test_a_trust_policy_that_does_not_name_the_hub_is_access_denied(emulator, start, inbox):
    b = ac.new_account()
    ac.create_member_role(emulator.url, b, "guardduty-responder", trusted_account=ac.new_account())
    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=1, services=["web"], account=b)
    task = service_task_on(fleet, fleet.instances[0])
    fn = start("guardduty-responder", [b], NOTIFY_TOPIC_ARN=inbox.topic_arn)

    result = fn.invoke(member_finding(fleet, task))

    assert not result.ok
    assert cannot_assume(b, "guardduty-responder") in json.dumps(result.error)
    assert [c["reason"] for c in ac.assume_role_calls(emulator.url, account=b)] == ["trust policy"]
    assert task_of(fleet, task)["lastStatus"] == "RUNNING"


def test_instance_drain_completes_a_member_accounts_hook_in_that_account(emulator, start, proxy):
    region = emulator.region
    b = ac.new_account()
    ac.create_member_role(emulator.url, b, "instance-drain")
    hub_fleet, b_fleet = twin_fleets(emulator, region, b, instances=2, tasks_per_instance=0)
    sqs = emulator.client("sqs")
    queue = FunctionQueue.create(sqs, "org-drain", max_receive=2, tags=SKIP_DELAYS)
    inbox = Inbox.create(emulator, prefix="org-drain")
    fn = start("instance-drain", [b], NOTIFY_TOPIC_ARN=inbox.topic_arn, DRAIN_QUEUE_URL=queue.url,
               DRAIN_POLL_SECONDS="5")
    event = fl.fire_lifecycle(emulator.url, b_fleet, b_fleet.instances[0])
    queue.send(event)

    delivery = queue.deliver(fn)

    assert delivery.completed, delivery
    (action,) = fl.lifecycle_actions(emulator.url, region, account=b, token=event["detail"]["LifecycleActionToken"])
    assert (action["status"], action["result"], action["completed_by"]) == ("completed", "CONTINUE", "CompleteLifecycleAction")
    assert fl.lifecycle_actions(emulator.url, region, group=hub_fleet.asg_name) == []
    assert [ci["status"] for ci in hub_fleet.container_instances()] == ["ACTIVE", "ACTIVE"]
    completes = proxy.calls("autoscaling", "CompleteLifecycleAction")
    assert [c.account for c in completes] == [b]
    notes = inbox.read()
    assert notes and {(n.attributes["account"], n.attributes["region"]) for n in notes} == {(b, region)}


def test_task_retirement_redeploys_a_member_accounts_service_in_that_account(emulator, start, inbox):
    region = emulator.region
    b = ac.new_account()
    ac.create_member_role(emulator.url, b, "task-retirement")
    hub_fleet, b_fleet = twin_fleets(emulator, region, b, tasks_per_instance=1)
    before = {f.account: deployment_ids(f.ecs, f.cluster_name, "web") for f in (hub_fleet, b_fleet)}
    fn = start("task-retirement", [b], NOTIFY_TOPIC_ARN=inbox.topic_arn, RETIREMENT_QUEUE_URL=FunctionQueue.create(
        emulator.client("sqs"), "retirement", max_receive=None).url)
    event = ecs_retirement_event([f"{b_fleet.cluster_name}|web"], region=region)
    event["account"] = b

    result = fn.invoke(event)

    assert result.ok, result.error
    assert deployment_ids(b_fleet.ecs, b_fleet.cluster_name, "web") != before[b]
    assert deployment_ids(hub_fleet.ecs, hub_fleet.cluster_name, "web") == before[HUB]
    notes = [n for n in inbox.read() if n.action == "redeploy-service"]
    assert len(notes) == 1 and notes[0].attributes["account"] == b


# --------------------------------------------------------------------------
# ami-rollout's scheduled check fans out
# --------------------------------------------------------------------------


def fanout_targets(messages: list[dict[str, Any]]) -> list[tuple[str, str]]:
    bodies = [json.loads(m["Body"]) for m in messages]
    for body in bodies:
        assert body["detail-type"] == "Scheduled Event", body
        assert body["ecs-autopilot"] == {"fanout": True} or body["ecs-autopilot"].get("fanout") is True, body
    return sorted((b["account"], b["region"]) for b in bodies)


def test_a_scheduled_check_over_20_accounts_and_2_regions_fans_out_and_every_scoped_check_finishes(
        emulator, start, proxy, inbox):
    regions = [fresh_region(emulator.url), fresh_region(emulator.url)]
    members = [ac.new_account() for _ in range(19)]
    everyone = [HUB, *members]  # 20 accounts: the hub's own is always served
    for account in members:
        ac.create_member_role(emulator.url, account, "ami-rollout")
    ac.ensure_member_role(emulator.url, HUB, "ami-rollout")  # both Regions are outside the hub's
    c, d = members[0], members[1]
    c_first, _, _ = ac.drifted_group(emulator.url, c, regions[0])
    c_second, _, _ = ac.drifted_group(emulator.url, c, regions[0])
    c_other_region, _, _ = ac.drifted_group(emulator.url, c, regions[1])
    d_group, _, d_ami = ac.drifted_group(emulator.url, d, regions[0])
    sqs = emulator.client("sqs")
    fanout = FunctionQueue.create(sqs, "org-fanout", max_receive=2)
    fn = start("ami-rollout", ",".join(everyone), NOTIFY_TOPIC_ARN=inbox.topic_arn, REGIONS=",".join(regions),
               FANOUT_QUEUE_URL=fanout.url, MAX_CONCURRENT_ROLLOUTS="1")

    scheduled = fn.invoke(scheduled_event(emulator.region))

    assert scheduled.ok, scheduled.error
    assert not [c for c in proxy.calls() if c.service in FLEET_SERVICES], "the scheduled check reads no fleet"
    assert proxy.assume_role_calls() == []
    assert len(proxy.calls("sqs", "SendMessageBatch")) == 4, "10 per call"
    (fanned,) = logs(fn, "fanned out")
    assert fanned["targets"] == 40
    messages = ac.peek_queue(sqs, fanout.url)
    assert fanout_targets(messages) == sorted((a, r) for a in everyone for r in regions)
    proxy.clear_calls()

    batches = pump(sqs, fanout.url, fn, max_batches=10)

    assert sum(len(b.message_ids) for b in batches) == 40
    assert [b.failed_ids for b in batches if b.failed_ids] == [], [b.invoke.error for b in batches]
    assert fanout.queued() == 0 and not ac.peek_queue(sqs, fanout.dlq_url)
    # The budget (1) counts within one account and Region.
    started = {f.asg_name: fl.instance_refreshes(emulator.url, f.region, f.asg_name, account=f.account)
               for f in (c_first, c_second, c_other_region, d_group)}
    assert len(started[c_first.asg_name]) + len(started[c_second.asg_name]) == 1
    assert len(started[c_other_region.asg_name]) == 1 and len(started[d_group.asg_name]) == 1
    # One AssumeRole per account, whatever the Regions (the hub's own too: neither Region
    # is the hub's, where its own role would do).
    counts = ac.assume_role_counts(emulator.url, caller_account=HUB, outcome="allowed")
    assert {a: counts.get(a, 0) for a in members} == {m: 1 for m in members}
    assert sorted(str(c.params["RoleArn"]).split(":")[4] for c in proxy.assume_role_calls()) == sorted(everyone)
    assert {(c.account, c.region) for c in proxy.calls() if c.service in FLEET_SERVICES} <= {
        (a, r) for a in everyone for r in regions}
    rollouts = [n for n in inbox.read() if n.action == "rollout" and n.outcome == "done"]
    assert {(n.attributes["account"], n.attributes["region"]) for n in rollouts} == {
        (c, regions[0]), (c, regions[1]), (d, regions[0])}


def test_a_parameter_change_in_a_member_account_rolls_that_accounts_group(emulator, start, proxy, inbox):
    from harness.events import parameter_event

    region = fresh_region(emulator.url)
    c = ac.new_account()
    ac.create_member_role(emulator.url, c, "ami-rollout")
    group, param, new = ac.drifted_group(emulator.url, c, region)
    sqs = emulator.client("sqs")
    fanout = FunctionQueue.create(sqs, "org-fanout", max_receive=2)
    fn = start("ami-rollout", [c], NOTIFY_TOPIC_ARN=inbox.topic_arn, REGIONS=region, FANOUT_QUEUE_URL=fanout.url)
    event = parameter_event(region, param)
    event["account"] = c
    event["resources"] = [r.replace(f":{HUB}:", f":{c}:") for r in event["resources"]]

    result = fn.invoke(event)

    assert result.ok, result.error
    (refresh,) = fl.instance_refreshes(emulator.url, region, group.asg_name, account=c)
    assert refresh["Status"] in ("Pending", "InProgress")
    assert fanout.queued() == 0, "a parameter change is acted on where it happened, not fanned out"
    assert {(x.account, x.region) for x in proxy.calls() if x.service in FLEET_SERVICES} == {(c, region)}
    (note,) = [n for n in inbox.read() if n.action == "rollout"]
    assert (note.outcome, note.attributes["account"], note.details["target_ami"]) == ("done", c, new)


def test_org_mode_fans_out_to_the_active_accounts_of_the_organization(emulator, start, proxy, inbox):
    org = ac.organization(emulator.url)
    ac.add_org_accounts(emulator.url, org, 3, roles=["ami-rollout"])
    region = fresh_region(emulator.url)
    sqs = emulator.client("sqs")
    fanout = FunctionQueue.create(sqs, "org-fanout", max_receive=2)
    fn = start("ami-rollout", "org", NOTIFY_TOPIC_ARN=inbox.topic_arn, REGIONS=region, FANOUT_QUEUE_URL=fanout.url)
    active = org.active_accounts(emulator.url)
    for account in {*active, HUB}:  # other tests' accounts too; the hub's, as REGIONS is not its Region
        ac.ensure_member_role(emulator.url, account, "ami-rollout")

    result = fn.invoke(scheduled_event(emulator.region))

    assert result.ok, result.error
    assert proxy.calls("organizations", "ListAccounts"), proxy.counts()
    targets = fanout_targets(ac.peek_queue(sqs, fanout.url))
    assert targets == sorted((a, region) for a in {*active, HUB})
    batches = pump(sqs, fanout.url, fn, max_batches=10)
    assert [b.failed_ids for b in batches if b.failed_ids] == [], [b.invoke.error for b in batches]
    assert all(ac.assume_role_counts(emulator.url).get(a) == 1 for a in org.accounts)


# --------------------------------------------------------------------------
# single-account mode is unchanged
# --------------------------------------------------------------------------


def test_single_account_mode_still_skips_an_event_stamped_with_another_account(emulator, start, proxy, inbox):
    b = ac.new_account()
    ac.create_member_role(emulator.url, b, "guardduty-responder")
    fleet = fl.seed_cluster(emulator.url, emulator.region, instances=1, services=["web"], account=b)
    task = service_task_on(fleet, fleet.instances[0])
    fn = start("guardduty-responder", None, NOTIFY_TOPIC_ARN=inbox.topic_arn)

    result = fn.invoke(member_finding(fleet, task, envelope_account=b))

    assert result.ok, result.error
    assert task_of(fleet, task)["lastStatus"] == "RUNNING"
    assert proxy.assume_role_calls() == [] and ac.assume_role_calls(emulator.url, account=b) == []
    assert not [c for c in proxy.calls() if c.service in FLEET_SERVICES]
    assert logs(fn, "skipped: event for another account or region")
    assert not logs(fn, "skipped: account not in ACCOUNTS")
    assert inbox.read() == []

    # Its own account's events are acted on as before, and the notification names the scope too.
    own = fl.seed_cluster(emulator.url, emulator.region, instances=1, services=["web"], tasks_per_instance=2)
    own_task = service_task_on(own, own.instances[0])
    result = fn.invoke(finding_event(own, own_task))
    assert result.ok, result.error
    assert task_of(own, own_task)["lastStatus"] == "STOPPED"
    assert proxy.assume_role_calls() == []
    (note,) = inbox.read()
    assert (note.attributes["account"], note.attributes["region"]) == (HUB, emulator.region)
