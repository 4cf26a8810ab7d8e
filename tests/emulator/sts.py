"""STS AssumeRole across accounts (issue 16's hub and member accounts)."""

from __future__ import annotations

import json
import re
import urllib.parse
import uuid
from typing import Any

from .common import _LOCK
from .state import _iso, _real_now


#
# moto already answers AssumeRole with credentials of the role's account (the access key
# it makes is registered in that account's IAM backend, so every request signed with it
# lands in that account's backends). What it doesn't do is check anything: it hands out
# credentials for a role that does not exist, whoever asks. AWS:
#
# * "AssumeRole ... The trust policy of the role specifies who can assume it"; a caller the
#   trust policy does not name, or whose request fails its conditions (sts:ExternalId:
#   "the external ID ... must match the value in the role's trust policy"), is refused
#   with AccessDenied (HTTP 403)
#   (https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRole.html,
#   https://docs.aws.amazon.com/IAM/latest/UserGuide/id_roles_create_for-user_externalid.html).
# * A role that does not exist gets the very same answer: AWS never says whether the role
#   exists ("User: ARN is not authorized to perform: sts:AssumeRole on resource: ROLE",
#   https://docs.aws.amazon.com/IAM/latest/UserGuide/troubleshoot_roles.html, "I can't
#   assume a role").
#
# The trust policy check here is the cheap part of IAM's evaluation: Allow/Deny statements
# whose Action matches sts:AssumeRole and whose Principal is "*", the caller's account id,
# arn:aws:iam::ACCOUNT:root, the caller's ARN or (for an assumed-role session) its role's
# ARN; conditions on sts:ExternalId, aws:PrincipalAccount and aws:PrincipalArn with the
# String*/Arn* operators (…IfExists too). Other condition keys (aws:PrincipalOrgID,
# aws:SourceIdentity, ...) are not evaluated (taken as met). The caller's own permission
# to call sts:AssumeRole (its identity policy) is not checked, as moto checks no identity
# policy.
#
# Every AssumeRole is recorded (allowed or denied) on the target account's STS backend, so
# /moto-api/reset clears the log: GET /_autopilot/assume-role-calls.


class StsAccessDenied(Exception):
    """AccessDenied as STS sends it (Query protocol, HTTP 403)."""

    def __init__(self, caller_arn: str, role_arn: str) -> None:
        from werkzeug.exceptions import HTTPException

        self.message = f"User: {caller_arn} is not authorized to perform: sts:AssumeRole on resource: {role_arn}"
        super().__init__(self.message)
        self.http = HTTPException(description=(
            '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><Error><Type>Sender</Type>'
            f"<Code>AccessDenied</Code><Message>{self.message}</Message></Error>"
            f"<RequestId>{uuid.uuid4()}</RequestId></ErrorResponse>"
        ))
        self.http.code = 403
        self.http.get_headers = lambda *a, **k: [("Content-Type", "text/xml"), ("X-Amzn-ErrorType", "AccessDenied")]  # type: ignore[method-assign]


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def _glob(pattern: str, value: str, case: bool = True) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, 0 if case else re.IGNORECASE) is not None


def _trust_principal_matches(principal: Any, caller: dict[str, str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, dict):
        return False
    names = {caller["account"], f"arn:{caller['partition']}:iam::{caller['account']}:root", caller["arn"]}
    if caller.get("role_arn"):
        names.add(caller["role_arn"])
    return any(p == "*" or p in names for p in _as_list(principal.get("AWS")))


def _trust_conditions_hold(conditions: Any, context: dict[str, str | None]) -> bool:
    for operator, pairs in (conditions or {}).items():
        base = operator[:-len("IfExists")] if operator.endswith("IfExists") else operator
        for key, expected in (pairs or {}).items():
            key = key.lower()
            if key not in context:
                continue  # not evaluated here (see above)
            actual = context[key]
            if actual is None:
                if operator.endswith("IfExists"):
                    continue
                return False
            values = [str(v) for v in _as_list(expected)]
            if base in ("StringEquals", "ArnEquals"):
                ok = actual in values
            elif base == "StringEqualsIgnoreCase":
                ok = actual.lower() in (v.lower() for v in values)
            elif base in ("StringLike", "ArnLike"):
                ok = any(_glob(v, actual) for v in values)
            elif base in ("StringNotEquals", "ArnNotEquals"):
                ok = actual not in values
            elif base in ("StringNotLike", "ArnNotLike"):
                ok = not any(_glob(v, actual) for v in values)
            else:
                continue
            if not ok:
                return False
    return True


def _trust_allows(document: str, caller: dict[str, str], external_id: str | None) -> bool:
    try:
        policy = json.loads(urllib.parse.unquote(document) if document.lstrip().startswith("%") else document)
    except ValueError:
        return False
    context = {
        "sts:externalid": external_id,
        "aws:principalaccount": caller["account"],
        "aws:principalarn": caller.get("role_arn") or caller["arn"],
    }
    allowed = False
    for statement in _as_list(policy.get("Statement")):
        if not any(_glob(a, "sts:AssumeRole", case=False) for a in _as_list(statement.get("Action"))):
            continue
        if not _trust_principal_matches(statement.get("Principal"), caller):
            continue
        if not _trust_conditions_hold(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _assume_role_log(account: str) -> list[dict[str, Any]]:
    from moto.sts.models import sts_backends

    backend = sts_backends[account]["aws"]
    store = backend.__dict__.get("_autopilot_assume_role_calls")
    if store is None:
        store = backend.__dict__["_autopilot_assume_role_calls"] = []
    return store


def _patch_assume_role() -> None:
    from moto.iam.models import iam_backends
    from moto.sts.responses import TokenResponse
    from moto.sts.models import sts_backends

    orig = TokenResponse.assume_role

    def assume_role(self: TokenResponse) -> Any:
        role_arn = self._get_param("RoleArn") or ""
        external_id = self._get_param("ExternalId")
        parts = role_arn.split(":")
        target = parts[4] if len(parts) > 5 else self.current_account
        partition = parts[1] if len(parts) > 5 else "aws"
        _, caller_arn, caller_account = sts_backends[self.current_account][self.partition].get_caller_identity(
            self.get_access_key(), self.region)
        caller = {"account": caller_account, "arn": caller_arn, "partition": partition}
        session = sts_backends[self.current_account][self.partition].get_assumed_role_from_access_key(self.get_access_key())
        if session is not None:
            caller["role_arn"] = session.role_arn
        record = {
            "account": target, "role_arn": role_arn, "session_name": self._get_param("RoleSessionName"),
            "external_id": external_id, "caller": caller_arn, "caller_account": caller_account,
            "region": self.region, "at": _iso(_real_now()),
        }
        try:
            role = iam_backends[target][partition].get_role_by_arn(role_arn)
        except Exception:
            role = None
        reason = None
        if role is None:
            reason = "no such role"
        elif not _trust_allows(role.assume_role_policy_document, caller, external_id):
            reason = "trust policy"
        with _LOCK:
            _assume_role_log(target).append({**record, "outcome": "denied" if reason else "allowed", "reason": reason})
        if reason:
            raise StsAccessDenied(caller_arn, role_arn).http
        return orig(self)

    TokenResponse.assume_role = assume_role  # type: ignore[method-assign]


def control_assume_role_calls(query: dict[str, str]) -> dict[str, Any]:
    """GET /_autopilot/assume-role-calls?account=&outcome=&role_arn=: every AssumeRole the
    emulator answered, oldest first, with the count per target account."""
    from moto.sts.models import sts_backends

    calls: list[dict[str, Any]] = []
    for account in list(sts_backends.keys()):
        if query.get("account") and query["account"] != account:
            continue
        backend = sts_backends[account].get("aws") if "aws" in sts_backends[account].keys() else None
        calls += list(backend.__dict__.get("_autopilot_assume_role_calls", [])) if backend is not None else []
    for key in ("outcome", "role_arn", "caller_account"):
        if query.get(key):
            calls = [c for c in calls if c[key] == query[key]]
    calls.sort(key=lambda c: c["at"])
    by_account: dict[str, int] = {}
    for c in calls:
        by_account[c["account"]] = by_account.get(c["account"], 0) + 1
    return {"calls": calls, "by_account": by_account}
