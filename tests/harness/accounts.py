"""Several AWS accounts in one emulator: the hub (moto's default account, where the
functions run with plain credentials) and member accounts they reach through STS
AssumeRole, as issue 16's hub mode does.

    b = new_account()                                   # a fresh 12-digit member account
    create_member_role(emulator.url, b, "guardduty-responder")
    fleet = seed_cluster(emulator.url, region, account=b, ...)   # harness.fleet, in account b
    ecs_b = account_client(emulator.url, "ecs", region, b)
    env = hub_env(emulator, "guardduty-responder", [b], NOTIFY_TOPIC_ARN=...)
    ... run the function ...
    assume_role_calls(emulator.url, account=b)          # what STS answered, per target account

How the emulator tells accounts apart (moto 5): a request acts in the account of its
access key. Keys moto handed out from AssumeRole belong to the role's account; any other
key (``testing``) is the default account 123456789012, unless the request carries moto's
``x-moto-account-id`` header. The harness seeds and reads member accounts with that
header (``harness.fleet.client(..., account=)``), so its own work never shows as an
AssumeRole; the functions under test get no header and must assume the member role,
which the emulator refuses (AccessDenied) when the role doesn't exist or its trust policy
doesn't let the hub in (tests/emulator/README.md, "STS"). The hub's own account is served
with the function's own role in the hub's Region only: in its other Regions it needs its
member role too (``ensure_member_role(endpoint, HUB, function)``).
"""

from __future__ import annotations

import json
import random
import urllib.parse
from dataclasses import dataclass, field
from typing import Any, Iterable

import boto3

from . import fleet as fl

HUB = fl.ACCOUNT  # moto's default account: the hub's, where the functions run
FUNCTIONS = ("instance-drain", "ami-rollout", "guardduty-responder", "task-retirement")
ROLE_PREFIX = "ecs-autopilot"


def member_role_name(function: str, prefix: str = ROLE_PREFIX) -> str:
    """The contract's default MEMBER_ROLE_NAME: ``ecs-autopilot-<function>``."""
    return f"{prefix}-{function}"


def role_arn(account: str, name: str, partition: str = "aws") -> str:
    return f"arn:{partition}:iam::{account}:role/{name}"


_used: set[str] = set()


def new_account() -> str:
    """A fresh 12-digit account id no other test of this process uses (its emulator
    backends start empty, so a test that reads a whole account sees only its own)."""
    while True:
        account = f"{random.randrange(2 * 10**11, 10**12):012d}"
        if account not in _used and account != HUB:
            _used.add(account)
            return account


# --------------------------------------------------------------------------
# clients in an account
# --------------------------------------------------------------------------


def account_client(endpoint: str, service: str, region: str, account: str) -> Any:
    """A boto3 client acting in ``account`` (moto's ``x-moto-account-id`` header)."""
    return fl.client(endpoint, service, region, account)


def account_session(endpoint: str, account: str, region: str = "us-east-1") -> boto3.Session:
    """A boto3 Session whose clients act in ``account``. ``endpoint_url`` is still given
    per client: ``session.client("ecs", endpoint_url=endpoint)``."""
    session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing", region_name=region)
    if account != HUB:
        def stamp(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account

        session.events.register("before-sign.*.*", stamp)
    return session


def assumed_session(endpoint: str, arn: str, region: str = "us-east-1", *, external_id: str | None = None,
                    session_name: str = "harness") -> boto3.Session:
    """A boto3 Session with the credentials STS gives for ``arn`` (a real AssumeRole
    through the emulator, recorded like the functions' own), e.g. an organization
    account's ``OrganizationAccountAccessRole``."""
    sts = fl.client(endpoint, "sts", region)
    kwargs: dict[str, Any] = {"RoleArn": arn, "RoleSessionName": session_name}
    if external_id:
        kwargs["ExternalId"] = external_id
    creds = sts.assume_role(**kwargs)["Credentials"]
    return boto3.Session(aws_access_key_id=creds["AccessKeyId"], aws_secret_access_key=creds["SecretAccessKey"],
                         aws_session_token=creds["SessionToken"], region_name=region)


# --------------------------------------------------------------------------
# member roles
# --------------------------------------------------------------------------


def trust_policy(trusted_account: str = HUB, *, external_id: str | None = None,
                 principal_arn: str | None = None) -> dict[str, Any]:
    """A member role's trust policy: the hub account's principals may assume it, with
    ``sts:ExternalId`` / ``aws:PrincipalArn`` conditions when given (what member.yaml
    writes, less aws:PrincipalOrgID, which the emulator doesn't evaluate)."""
    statement: dict[str, Any] = {
        "Effect": "Allow",
        "Principal": {"AWS": f"arn:aws:iam::{trusted_account}:root"},
        "Action": "sts:AssumeRole",
    }
    conditions: dict[str, Any] = {}
    if external_id:
        conditions["sts:ExternalId"] = external_id
    if principal_arn:
        conditions["aws:PrincipalArn"] = principal_arn
    if conditions:
        statement["Condition"] = {"StringEquals": conditions}
    return {"Version": "2012-10-17", "Statement": [statement]}


def create_member_role(endpoint: str, account: str, function: str | None = None, *, name: str | None = None,
                       trusted_account: str = HUB, external_id: str | None = None,
                       principal_arn: str | None = None) -> str:
    """Create ``function``'s member role (or the role ``name``) in ``account``; returns its
    ARN. Permissions are not modelled (moto checks no identity policy)."""
    name = name or member_role_name(function or "guardduty-responder")
    iam = fl.client(endpoint, "iam", "us-east-1", account)
    document = json.dumps(trust_policy(trusted_account, external_id=external_id, principal_arn=principal_arn))
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=document,
                           Description="ecs-autopilot member role (test bed)")["Role"]["Arn"]


def ensure_member_role(endpoint: str, account: str, function: str, **kwargs: Any) -> str:
    """``create_member_role`` unless the role is there already; returns its ARN."""
    iam = fl.client(endpoint, "iam", "us-east-1", account)
    try:
        return iam.get_role(RoleName=member_role_name(function))["Role"]["Arn"]
    except iam.exceptions.NoSuchEntityException:
        return create_member_role(endpoint, account, function, **kwargs)


def create_member_roles(endpoint: str, account: str, functions: Iterable[str] = FUNCTIONS, **kwargs: Any) -> list[str]:
    return [create_member_role(endpoint, account, f, **kwargs) for f in functions]


def delete_member_role(endpoint: str, account: str, function: str | None = None, *, name: str | None = None) -> None:
    iam = fl.client(endpoint, "iam", "us-east-1", account)
    iam.delete_role(RoleName=name or member_role_name(function or "guardduty-responder"))


# --------------------------------------------------------------------------
# what STS answered
# --------------------------------------------------------------------------


def assume_role_calls(endpoint: str, account: str | None = None, **filters: str) -> list[dict[str, Any]]:
    """GET /_autopilot/assume-role-calls: every AssumeRole the emulator answered, oldest
    first (``account`` = the role's account; filters ``outcome`` allowed/denied,
    ``role_arn``, ``caller_account``)."""
    query = {k: v for k, v in {"account": account, **filters}.items() if v}
    path = "/_autopilot/assume-role-calls" + (f"?{urllib.parse.urlencode(query)}" if query else "")
    return fl.control(endpoint, "GET", path)["calls"]


def assume_role_counts(endpoint: str, **filters: str) -> dict[str, int]:
    """{role's account: AssumeRole calls}."""
    query = urllib.parse.urlencode({k: v for k, v in filters.items() if v})
    return fl.control(endpoint, "GET", "/_autopilot/assume-role-calls" + (f"?{query}" if query else ""))["by_account"]


# --------------------------------------------------------------------------
# an organization
# --------------------------------------------------------------------------


@dataclass
class Organization:
    id: str
    management_account: str
    accounts: list[str] = field(default_factory=list)  # member accounts this harness created

    def active_accounts(self, endpoint: str) -> list[str]:
        """ListAccounts' ACTIVE accounts, the management account included (what `org` mode reads)."""
        orgs = fl.client(endpoint, "organizations", "us-east-1")
        return [a["Id"] for page in orgs.get_paginator("list_accounts").paginate() for a in page["Accounts"]
                if a.get("Status") == "ACTIVE"]


def organization(endpoint: str) -> Organization:
    """The hub's organization (created once per emulator: moto keeps a registry of
    management accounts that a reset does not clear)."""
    orgs = fl.client(endpoint, "organizations", "us-east-1")
    try:
        org = orgs.describe_organization()["Organization"]
    except orgs.exceptions.AWSOrganizationsNotInUseException:
        org = orgs.create_organization(FeatureSet="ALL")["Organization"]
    return Organization(org["Id"], org["MasterAccountId"])


def add_org_accounts(endpoint: str, org: Organization, n: int, *, roles: Iterable[str] = ()) -> list[str]:
    """Create ``n`` member accounts (each with moto's ``OrganizationAccountAccessRole``,
    trusting the management account) and, for each, the member roles of ``roles``."""
    orgs = fl.client(endpoint, "organizations", "us-east-1")
    made = []
    for _ in range(n):
        tag = fl.unique("acct")
        status = orgs.create_account(AccountName=tag, Email=f"{tag}@example.com")["CreateAccountStatus"]
        account = status.get("AccountId") or orgs.describe_create_account_status(
            CreateAccountStatusId=status["Id"])["CreateAccountStatus"]["AccountId"]
        _used.add(account)
        for function in roles:
            create_member_role(endpoint, account, function)
        made.append(account)
    org.accounts += made
    return made


# --------------------------------------------------------------------------
# a function in hub mode
# --------------------------------------------------------------------------


def accounts_value(accounts: Iterable[str] | str) -> str:
    return accounts if isinstance(accounts, str) else ",".join(accounts)


def hub_env(emulator: Any, accounts: Iterable[str] | str, **extra: str) -> dict[str, str]:
    """Environment of a function in hub mode (``ACCOUNTS`` = the list, or ``org``)."""
    env = {"ACCOUNTS": accounts_value(accounts), "RUST_LOG": "info"}
    env.update(extra)
    return emulator.env(**env)


# --------------------------------------------------------------------------
# ami-rollout's fan-out
# --------------------------------------------------------------------------


def drifted_group(endpoint: str, account: str, region: str, *, instances: int = 2, **seed: Any) -> tuple[fl.Fleet, str, str]:
    """A managed group in ``account``/``region`` on an old AMI whose team parameter (in
    that account) names a new one: (fleet, parameter name, new AMI)."""
    import uuid

    from .ami_rollout_helpers import PARAMETER_TAG

    old, new = "ami-" + uuid.uuid4().hex[:17], "ami-" + uuid.uuid4().hex[:17]
    fl.register_image(endpoint, new, region, account=account)
    param = f"/team/{uuid.uuid4().hex[:12]}/ami"
    fl.client(endpoint, "ssm", region, account).put_parameter(Name=param, Value=new, Type="String", Overwrite=True)
    fleet = fl.seed_cluster(endpoint, region, instances=instances, ami=old, services=(), hooks=False,
                            extra_group_tags={PARAMETER_TAG: param, **seed.pop("extra_group_tags", {})},
                            account=account, **seed)
    return fleet, param, new


def peek_queue(sqs: Any, queue_url: str) -> list[dict[str, Any]]:
    """Every message of a queue, left in it (made visible again at once)."""
    seen: dict[str, dict[str, Any]] = {}
    while True:
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, VisibilityTimeout=60,
                                       MessageAttributeNames=["All"]).get("Messages") or []
        if not messages:
            break
        for m in messages:
            seen[m["MessageId"]] = m
    handles = [m["ReceiptHandle"] for m in seen.values()]
    for i in range(0, len(handles), 10):
        sqs.change_message_visibility_batch(QueueUrl=queue_url, Entries=[
            {"Id": str(n), "ReceiptHandle": h, "VisibilityTimeout": 0} for n, h in enumerate(handles[i:i + 10])])
    return list(seen.values())
