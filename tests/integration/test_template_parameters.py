"""template.yaml's parameters against the functions' own configuration checks, with the
real binaries' cold starts (issue 19, item 3): a value the deploy accepts must start the
function, so a bad value fails the deploy with the parameter's ConstraintDescription, not
the function later.

The cases are generated from the template: for every parameter a function reads (through
its environment), each bound of a Number parameter and one past it, each AllowedValue,
the explicit "unset" value (-1 where the template turns it into an empty variable), and
for patterns a table of probes that must agree (pattern matches <=> cold start succeeds).
A parameter added without bounds, or bounds that drift from the code, fail here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest

from harness.emulator import find_function_binary
from harness.runtime_api import LambdaProcess
from harness.template import FUNCTIONS, Template

T = Template.load()

# Values of String parameters with an AllowedPattern, to try on both sides. Each must be
# accepted by both the pattern and the function, or refused by both.
PROBES: dict[str, list[str]] = {
    "window": [
        "", "Mon-Fri 02:00-05:00", "Sat,Sun 00:00-24:00", "Sun 22:00-02:00", "Fri-Mon 23:00-01:00",
        "Mon-Fri 02:00-05:00; Sat,Sun 00:00-24:00", "monday 01:00-02:00", "MON 01:00-02:00;",
        "Funday 02:00-03:00", "Mon 02:00-02:00", "Mon 24:00-01:00", "Mon 01:00-25:00", "Mon 01:60-02:00",
        "Monxyz 01:00-02:00", "Mon01:00-02:00", "weekends at night", "Mon 01:00", "Mon,,Tue 01:00-02:00",
    ],
    "AmiRolloutCheckpointPercentages": [
        "", "20", "20,50", "20, 50", "1,100", "100", "10,20,30,40,50,60,70,80,90",
        "0", "0,50", "101", "half", "20;50", "-5",
    ],
    "AmiRolloutDefaultAmiParameter": [
        "/aws/service/ecs/optimized-ami/amazon-linux-2023/recommended/image_id",
        "/aws/service/bottlerocket/aws-ecs-2/arm64/latest/image_id", "/platform/ami", "x",
    ],
    "finding types": ["", "Execution:Runtime/", "Execution:Runtime/,CryptoCurrency:Runtime/ReverseShell"],
    "names": ["", "web", "web, ci-runner", "a_b-c"],
    "hook names": ["ecs-autopilot-*", "ecs-autopilot-drain,ecs-autopilot-launch", "my-hook", "a*,b*,c,d-*",
                   "a,b,c,d,e"],
    "min healthy": ["", "0", "90", "100", "101"],
    "max healthy": ["", "100", "150", "200", "201"],
    "alarms": ["", "cpu-high", "cpu-high,errors"],
    "bake time": ["", "0", "3600", "172800", "172801"],
    "security group": ["", "sg-0123456789abcdef0", "sg-12345678"],
}
PROBE_SET = {
    "AmiRolloutMaintenanceWindow": "window",
    "RetirementMaintenanceWindow": "window",
    "AmiRolloutCheckpointPercentages": "AmiRolloutCheckpointPercentages",
    "AmiRolloutDefaultAmiParameter": "AmiRolloutDefaultAmiParameter",
    "GuardDutyFindingTypesAllow": "finding types",
    "GuardDutyFindingTypesDeny": "finding types",
    "GuardDutyExcludeServices": "names",
    "GuardDutyExcludeTaskFamilies": "names",
    "LifecycleHookNames": "hook names",
    "AmiRolloutMinHealthyPercentage": "min healthy",
    "AmiRolloutMaxHealthyPercentage": "max healthy",
    "AmiRolloutRollbackAlarms": "alarms",
    "AmiRolloutBakeTimeSeconds": "bake time",
    "GuardDutyQuarantineSecurityGroup": "security group",
}

# Constraints between two parameters a template can't express (CloudFormation rules
# can't do arithmetic); the function refuses them at cold start and the parameters'
# descriptions say so. Testing one bound, the other parameter is set so the pair holds.
CROSS: dict[tuple[str, str], dict[str, str]] = {
    ("AmiRolloutMaxHealthyPercentage", "100"): {"AmiRolloutMinHealthyPercentage": "90"},
    ("AmiRolloutMaxHealthyPercentage", "150"): {"AmiRolloutMinHealthyPercentage": "90"},
    ("AmiRolloutMaxHealthyPercentage", "200"): {"AmiRolloutMinHealthyPercentage": "100"},
    ("AmiRolloutMaxHealthyPercentage", "201"): {"AmiRolloutMinHealthyPercentage": "100"},
    # Spans shorter than the default end margin (2 h 20 min) would never allow a rollout.
    ("AmiRolloutMaintenanceWindow", "Fri-Mon 23:00-01:00"): {"AmiRolloutWindowEndMarginSeconds": "600"},
    ("AmiRolloutMaintenanceWindow", "monday 01:00-02:00"): {"AmiRolloutWindowEndMarginSeconds": "600"},
    ("AmiRolloutMaintenanceWindow", "MON 01:00-02:00;"): {"AmiRolloutWindowEndMarginSeconds": "600"},
}
CROSS_DOCUMENTED = {
    "AmiRolloutMaxHealthyPercentage": "MinHealthyPercentage + 100",
    "AmiRolloutWindowEndMarginSeconds": "Every span of the window must be longer",
}



@dataclass(frozen=True)
class Case:
    function: str
    parameter: str
    value: str
    deploys: bool  # the template accepts it

    @property
    def id(self) -> str:
        return f"{self.function}:{self.parameter}={self.value!r}"


def _accepts(param: dict[str, Any], value: str) -> bool:
    if "AllowedValues" in param:
        return value in [str(v) for v in param["AllowedValues"]]
    if param["Type"] == "Number":
        n = float(value)
        return float(param.get("MinValue", "-inf")) <= n <= float(param.get("MaxValue", "inf"))
    pattern = param.get("AllowedPattern")
    return pattern is None or re.fullmatch(pattern, value) is not None


def cases() -> list[Case]:
    out = []
    for function in FUNCTIONS:
        for var, (name, unset) in sorted(T.env_sources(function).items()):
            p = T.parameters[name]
            values: list[str] = []
            if "AllowedValues" in p:
                values = [str(v) for v in p["AllowedValues"]]
            elif p["Type"] == "Number":
                lo, hi = int(p["MinValue"]), int(p["MaxValue"])
                # With an "unset" value (its MinValue), the first real value too.
                values = [str(lo - 1), str(lo), *([str(lo + 1)] if unset else []), str(hi), str(hi + 1)]
            else:
                values = PROBES[PROBE_SET[name]]
            out += [Case(function, name, v, _accepts(p, v)) for v in dict.fromkeys(values)]
    return out


def cold_start(function: str, params: dict[str, str]) -> tuple[bool, str]:
    binary = find_function_binary(function)
    if binary is None:
        pytest.skip(f"{function} is not built")
    env = T.function_env(function, params)
    env.update({"AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x", "AWS_REGION": "us-east-1",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_EC2_METADATA_DISABLED": "true"})
    fn = LambdaProcess(binary, env=env, start=False, timeout=10)
    try:
        fn.start()
        started = fn.wait_ready(timeout=20)
        return started, fn.output()[-1500:]
    finally:
        fn.stop()


def test_every_parameter_a_function_reads_is_bounded() -> None:
    for function in FUNCTIONS:
        for var, (name, unset) in T.env_sources(function).items():
            p = T.parameters[name]
            bounded = (
                "AllowedValues" in p
                or (p["Type"] == "Number" and "MinValue" in p and "MaxValue" in p)
                or (p["Type"] == "String" and str(p.get("AllowedPattern", "")).startswith("^")
                    and str(p["AllowedPattern"]).endswith("$") and name in PROBE_SET)
            )
            assert bounded, f"{name} ({var} of {function}) has no bounds, or no probes here"
            if PROBE_SET.get(name) in ("window", "AmiRolloutCheckpointPercentages"):
                assert p.get("ConstraintDescription"), f"{name} needs a ConstraintDescription"
            if unset is not None:
                assert str(p["MinValue"]) == unset, f"{name}: the unset value {unset} must be its MinValue"


def test_cross_parameter_constraints_are_described() -> None:
    for name, words in CROSS_DOCUMENTED.items():
        assert words in " ".join(str(T.parameters[name]["Description"]).split()), name


@pytest.mark.parametrize("case", cases(), ids=lambda c: c.id)
def test_the_template_accepts_exactly_what_the_function_starts_with(case: Case) -> None:
    params = {case.parameter: case.value, **CROSS.get((case.parameter, case.value), {})}
    started, output = cold_start(case.function, params)
    if case.deploys:
        assert started, f"the template accepts {case.id} but the function refuses it:\n{output}"
    else:
        assert not started, f"the template refuses {case.id} but the function starts with it"


# -- item 4: the log level reaches both the function and Lambda's filter -----------------

LEVELS = ["TRACE", "DEBUG", "INFO", "WARN", "ERROR"]


def lambda_keeps(line: dict[str, Any], application_level: str) -> bool:
    """Lambda's JSON log filter: a line is kept if its `level` is at or above the
    application log level (an invalid or missing level counts as INFO)."""
    level = str(line.get("level", "INFO")).upper()
    level = level if level in LEVELS else "INFO"
    return LEVELS.index(level) >= LEVELS.index(application_level)


def run_quiet_event(emulator: Any, env: dict[str, str]) -> list[dict[str, Any]]:
    from harness.events import fixture

    binary = find_function_binary("task-retirement")
    if binary is None:
        pytest.skip("task-retirement is not built")
    env = emulator.env(**{k: v for k, v in env.items() if k != "RETIREMENT_QUEUE_URL"},
                       RETIREMENT_QUEUE_URL=emulator.client("sqs").create_queue(QueueName="loglevel")["QueueUrl"])
    with LambdaProcess(binary, env=env, timeout=60) as fn:
        result = fn.invoke(fixture("retirement-ec2-rebalance-recommendation.json"))
        assert result.ok, (result.error, fn.output()[-2000:])
        return fn.json_logs()


@pytest.mark.parametrize("level", ["debug", "info"])
def test_the_log_level_parameter_sets_what_lambda_keeps(emulator: Any, level: str) -> None:
    env = T.function_env("task-retirement", {"RustLog": level})
    application = T.resolve(T.doc["Globals"]["Function"]["LoggingConfig"]["ApplicationLogLevel"], {"RustLog": level})
    env["AWS_LAMBDA_LOG_LEVEL"] = application  # what Lambda sets from ApplicationLogLevel
    kept = [j for j in run_quiet_event(emulator, env) if lambda_keeps(j, application)]
    debug = [j for j in kept if j.get("level") == "DEBUG"]
    assert bool(debug) == (level == "debug"), (level, len(debug))
    assert any(j.get("level") == "INFO" for j in kept)


def test_without_rust_log_the_function_follows_lambdas_application_log_level(emulator: Any) -> None:
    env = T.function_env("task-retirement", {})
    del env["RUST_LOG"]
    env["AWS_LAMBDA_LOG_LEVEL"] = "DEBUG"
    assert any(j.get("level") == "DEBUG" for j in run_quiet_event(emulator, env))
