"""template.yaml and samconfig.toml against what AWS documents and what the code does
(issue 19, items 2 and 4-7): things cfn-lint and the SAM transform can't see.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

from harness.template import FUNCTIONS, Template

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "lint"))
from check_package import BUILT_TEMPLATE, package_problems  # noqa: E402

T = Template.load()
RECORD_BUDGET = 40  # seconds; shared::runtime::RECORD_BUDGET (the SDK operation timeout)
SQS_FED = {"instance-drain": "DrainQueue", "task-retirement": "RetirementQueue"}


def sqs_event(function: str) -> dict[str, Any]:
    events = T.function(function)["Properties"]["Events"]
    (event,) = [e for e in events.values() if e["Type"] == "SQS"]
    return dict(event["Properties"])


# -- item 6: batches, timeouts and visibility --------------------------------------------


@pytest.mark.parametrize("function", sorted(SQS_FED))
def test_sqs_fed_functions_keep_awss_six_times_visibility_rule(function: str) -> None:
    # AWS: the queue's visibility timeout at least six times the function timeout (plus
    # the batching window), or a batch still running becomes visible and runs twice.
    timeout = int(T.function_property(function, "Timeout"))
    props = sqs_event(function)
    window = int(props.get("MaximumBatchingWindowInSeconds", 0))
    queue = T.resources[SQS_FED[function]]["Properties"]
    assert props["Queue"] == {"Fn::GetAtt": [SQS_FED[function], "Arn"]}
    assert int(queue["VisibilityTimeout"]) >= 6 * timeout + window, (function, timeout, queue["VisibilityTimeout"])


@pytest.mark.parametrize("function", sorted(SQS_FED))
def test_sqs_fed_functions_fit_a_record_and_report_partial_failures(function: str) -> None:
    timeout = int(T.function_property(function, "Timeout"))
    props = sqs_event(function)
    # One record's budget must fit in a fresh invocation, with room for the response,
    # wherever a batch can hold a second record (the first is always taken): a shorter
    # timeout would hand back every record after the first, each return a receive
    # counted towards the DLQ.
    assert 1 <= int(props["BatchSize"]) <= 10
    if int(props["BatchSize"]) > 1:
        assert timeout >= RECORD_BUDGET + 10, (function, timeout)
    # Handed-back records are only retried alone if the function may report them.
    assert "ReportBatchItemFailures" in props["FunctionResponseTypes"]


def test_instance_drain_concurrency_is_capped_on_the_event_source_not_reserved() -> None:
    fn = T.function("instance-drain")["Properties"]
    assert "ReservedConcurrentExecutions" not in fn
    scaling = sqs_event("instance-drain")["ScalingConfig"]
    assert T.resolve(scaling, {}) is None  # default: no cap
    assert T.resolve(scaling, {"InstanceDrainMaximumConcurrency": "5"}) == {"MaximumConcurrency": "5"}
    p = T.parameters["InstanceDrainMaximumConcurrency"]
    assert (int(p["MinValue"]), int(p["MaxValue"])) == (0, 1000)
    # 1 is below AWS's MaximumConcurrency range (2-1000): a rule refuses it.
    (rule,) = [r for r in T.doc["Rules"].values() if "InstanceDrainMaximumConcurrency" in str(r)]
    assert rule["Assertions"][0]["Assert"] == {"Fn::Not": [{"Fn::Equals": [{"Ref": "InstanceDrainMaximumConcurrency"}, "1"]}]}


# -- item 4: log levels ------------------------------------------------------------------


@pytest.mark.parametrize("level", ["trace", "debug", "info", "warn", "error"])
def test_the_log_level_sets_lambdas_application_level_and_rust_log_together(level: str) -> None:
    logging = T.doc["Globals"]["Function"]["LoggingConfig"]
    assert logging["LogFormat"] == "JSON"
    assert T.resolve(logging["ApplicationLogLevel"], {"RustLog": level}) == level.upper()
    for function in FUNCTIONS:
        own = T.function(function)["Properties"].get("LoggingConfig", {})
        assert "ApplicationLogLevel" not in own and "LogFormat" not in own, function
        assert T.function_env(function, {"RustLog": level})["RUST_LOG"] == level


# -- item 5: SSM scope -------------------------------------------------------------------


def ssm_resources(params: dict[str, str]) -> list[str]:
    role = T.resources["AmiRolloutRole"]["Properties"]
    statements = [s for p in role["Policies"] for s in p["PolicyDocument"]["Statement"]]
    (read,) = [s for s in statements if s.get("Sid") == "ReadAmiParameters"]
    assert read["Action"] == "ssm:GetParameters"
    out = []
    for r in read["Resource"]:
        text = r["Fn::Sub"]
        values = {"AWS::Partition": "aws", "AWS::Region": "us-east-1", "AWS::AccountId": "123456789012",
                  **T.defaults(), **params}
        out.append(re.sub(r"\$\{([^}]+)\}", lambda m: values[m.group(1)], text))
    return out


def iam_matches(pattern: str, arn: str) -> bool:
    return re.fullmatch(re.escape(pattern).replace(r"\*", ".*"), arn) is not None


def test_public_parameters_are_readable_under_aws_service_only() -> None:
    resources = ssm_resources({})
    public = "arn:aws:ssm:us-east-1::parameter/aws/service/"
    for name in ("ecs/optimized-ami/amazon-linux-2023/arm64/recommended/image_id",
                 "bottlerocket/aws-ecs-2/x86_64/latest/image_id",
                 "ecs/optimized-ami/windows_server/2022/full/recommended/image_id"):
        assert any(iam_matches(r, public + name) for r in resources), name
    assert not any(iam_matches(r, "arn:aws:ssm:us-east-1::parameter/other/x") for r in resources)


def test_account_parameters_are_readable_under_the_prefix_only() -> None:
    default = str(T.parameters["AmiRolloutParameterPrefix"]["Default"])
    own = "arn:aws:ssm:us-east-1:123456789012:parameter"
    assert any(iam_matches(r, f"{own}{default}ami/prod") for r in ssm_resources({}))
    assert not any(iam_matches(r, f"{own}/secrets/db-password") for r in ssm_resources({}))
    custom = ssm_resources({"AmiRolloutParameterPrefix": "/platform/ami/"})
    assert any(iam_matches(r, f"{own}/platform/ami/web") for r in custom)
    assert not any(iam_matches(r, f"{own}/platform/other") for r in custom)


def test_the_prefix_pattern_refuses_wildcards_and_names_without_a_leading_slash() -> None:
    pattern = str(T.parameters["AmiRolloutParameterPrefix"]["AllowedPattern"])
    for good in ("/ecs-autopilot/", "/platform/ami/", "/a/"):
        assert re.fullmatch(pattern, good), good
    for bad in ("*", "platform/ami/", "/platform/*", "/platform/ami", "/", ""):
        assert not re.fullmatch(pattern, bad), bad


def test_the_parameter_change_rule_fires_only_under_the_prefix() -> None:
    pattern = T.resources["AmiRolloutParameterChangeRule"]["Properties"]["EventPattern"]
    assert pattern["detail"]["name"] == [{"prefix": {"Ref": "AmiRolloutParameterPrefix"}}]
    # The IAM scope and the rule name the same parameters.
    assert pattern["source"] == ["aws.ssm"]


# -- item 7: the AMI release subscription ------------------------------------------------

DEFAULT_ENABLED = ["us-east-1", "us-east-2", "us-west-1", "us-west-2", "ca-central-1", "sa-east-1",
                   "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-north-1", "ap-south-1",
                   "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2"]
OPT_IN = ["af-south-1", "ap-east-1", "ap-southeast-3", "eu-south-1", "me-south-1", "il-central-1", "mx-central-1"]


def test_the_ami_release_subscription_exists_only_where_sns_can_deliver() -> None:
    on = {"AmiRolloutSubscribeToAmiReleases": "true"}
    for name in ("AmiRolloutAmiReleaseSubscription", "AmiRolloutAmiReleasePermission"):
        assert T.resources[name]["Condition"] == "AmiRolloutSubscribes"
    for region in DEFAULT_ENABLED:
        assert T.condition("AmiRolloutSubscribes", on, region=region), region
        assert not T.condition("AmiRolloutSubscribes", {}, region=region), region
    for region in OPT_IN:
        assert not T.condition("AmiRolloutSubscribes", on, region=region), region
    assert not T.condition("AmiRolloutSubscribes", on, region="cn-north-1", partition="aws-cn")
    assert not T.condition("AmiRolloutSubscribes", on, region="us-gov-west-1", partition="aws-us-gov")
    out = T.doc["Outputs"]["AmiRolloutAmiReleaseSubscription"]["Value"]
    assert T.resolve(out, on, region="af-south-1") == "not subscribed"
    assert T.resolve(out, on, region="eu-west-1") == "subscribed"


# -- item 2: a deploy that can't be empty ------------------------------------------------


def test_samconfig_deploys_and_packages_the_built_template_only() -> None:
    config = tomllib.loads((REPO / "samconfig.toml").read_text())["default"]
    for command in ("deploy", "package"):
        assert config[command]["parameters"]["template_file"] == BUILT_TEMPLATE, command


def test_every_function_is_built_from_its_own_workspace_binary() -> None:
    for function, resource in FUNCTIONS.items():
        r = T.resources[resource]
        assert r["Metadata"]["BuildMethod"] == "rust-cargolambda", function
        assert r["Metadata"]["BuildProperties"]["Binary"] == function
        cargo = tomllib.loads((REPO / "functions" / function / "Cargo.toml").read_text())
        assert cargo["package"]["name"] == function
        assert (REPO / "functions" / function / "src" / "main.rs").is_file()


def test_the_source_template_would_ship_no_bootstrap_and_is_refused() -> None:
    problems = package_problems(REPO / "template.yaml")
    assert sorted(p.split(":")[0] for p in problems) == sorted(FUNCTIONS.values())
    assert package_problems(REPO / "nowhere" / "template.yaml")[0].endswith("run `sam build` (make sam-build) first")


def _built_layout(tmp: Path, missing: str | None = None) -> Path:
    """What `sam build` writes: one directory per function, named after its logical id,
    holding `bootstrap`, and a template whose CodeUri points at it."""
    text = (REPO / "template.yaml").read_text()
    for resource in FUNCTIONS.values():
        (tmp / resource).mkdir()
        if resource != missing:
            b = tmp / resource / "bootstrap"
            b.write_bytes(b"\x7fELF")
            b.chmod(b.stat().st_mode | stat.S_IXUSR)
    lines = []
    current = None
    for line in text.splitlines():
        m = re.match(r"^  (\w+):$", line)
        if m:
            current = m.group(1)
        if line.strip() == "CodeUri: ." and current in FUNCTIONS.values():
            line = line.replace("CodeUri: .", f"CodeUri: {current}")
        lines.append(line)
    (tmp / "template.yaml").write_text("\n".join(lines))
    return tmp / "template.yaml"


def test_a_built_layout_passes_and_a_function_without_bootstrap_is_refused(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    assert package_problems(_built_layout(good)) == []
    bad = tmp_path / "bad"
    bad.mkdir()
    problems = package_problems(_built_layout(bad, missing="TaskRetirementFunction"))
    assert [p.split(":")[0] for p in problems] == ["TaskRetirementFunction"]


def test_a_real_sam_build_if_present_has_a_bootstrap_per_function() -> None:
    built = REPO / BUILT_TEMPLATE
    if not built.is_file():
        pytest.skip("no .aws-sam/build (make sam-build); the layout tests above cover the check")
    assert package_problems(built) == []


def test_sam_deploy_without_a_build_stops_before_uploading_anything(tmp_path: Path) -> None:
    sam = shutil.which("sam", path=str(REPO / ".venv" / "bin")) or shutil.which("sam")
    if sam is None:
        pytest.skip("sam CLI not installed")
    shutil.copy(REPO / "template.yaml", tmp_path / "template.yaml")
    shutil.copy(REPO / "samconfig.toml", tmp_path / "samconfig.toml")
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    # Nothing may reach AWS: dummy credentials and a dead endpoint.
    env.update({"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "x",
                "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "SAM_CLI_TELEMETRY": "0"})
    run = subprocess.run([sam, "deploy", "--no-progressbar"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=600)
    out = run.stdout + run.stderr
    assert run.returncode != 0, out
    assert ".aws-sam/build/template.yaml" in out, out
    assert "Uploading" not in out and "Initiating deployment" not in out, out


# -- issue 17: the operator dashboard and the drain-age alarm ----------------------------

DEAD_LETTER_QUEUES = ["DrainDeadLetterQueue", "AmiRolloutDeadLetterQueue", "GuardDutyDeadLetterQueue",
                      "RetirementDeadLetterQueue"]


def dashboard() -> list[dict[str, Any]]:
    """The dashboard's widgets, its Fn::Sub variables replaced by `<Name>` stand-ins."""
    body = T.resources["OperatorDashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert isinstance(body, str)
    names = set(re.findall(r"\$\{([A-Za-z0-9:.]+)\}", body))
    for name in names:
        assert name.startswith("AWS::") or name.split(".")[0] in T.resources or name in T.parameters, name
    text = re.sub(r"\$\{([A-Za-z0-9:.]+)\}", lambda m: "60" if m.group(1) in T.parameters else f"<{m.group(1)}>", body)
    return json.loads(text)["widgets"]


def test_the_dashboard_answers_each_question_the_readme_says_it_does() -> None:
    widgets = dashboard()
    text = json.dumps(widgets)
    # Actions by function and outcome: the EMF metric's namespace and dimensions
    # (shared::metrics::action_line), one widget per function.
    for function in FUNCTIONS:
        assert (f"SEARCH('{{ecs-autopilot,function,action,outcome}} MetricName=\\\"Actions\\\" "
                f"function=\\\"{function}\\\"'") in text, function
    for outcome in ("failed", "warning"):
        assert f'MetricName=\\"Actions\\" outcome=\\"{outcome}\\"' in text, outcome
    for queue in DEAD_LETTER_QUEUES:
        assert ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", f"<{queue}.QueueName>"] in [
            m[:4] for w in widgets for m in w["properties"].get("metrics", [])], queue
    lambda_metrics = {(m[1], m[3]) for w in widgets for m in w["properties"].get("metrics", []) if m[0] == "AWS/Lambda"}
    for resource in FUNCTIONS.values():
        for metric in ("Errors", "Throttles", "Duration"):
            assert (metric, f"<{resource}>") in lambda_metrics, (metric, resource)
    drain = [m for w in widgets for m in w["properties"].get("metrics", []) if m[0] == "ecs-autopilot"]
    assert {m[1] for m in drain} == {"DrainsInProgress", "DrainAgeSeconds"}
    # Every widget fits the 24-column grid, and none overlaps another.
    cells = set()
    for w in widgets:
        assert w["x"] + w["width"] <= 24 and w["properties"].get("title") or w["type"] == "text", w
        for x in range(w["x"], w["x"] + w["width"]):
            for y in range(w["y"], w["y"] + w["height"]):
                assert (x, y) not in cells, w
                cells.add((x, y))


def test_a_stuck_drain_alarms_on_the_metric_instance_drain_writes() -> None:
    alarm = T.resources["DrainAgeAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == ("ecs-autopilot", "DrainAgeSeconds")
    assert alarm["Dimensions"] == [{"Name": "function", "Value": "instance-drain"}]
    assert (alarm["Statistic"], alarm["ComparisonOperator"]) == ("Maximum", "GreaterThanThreshold")
    assert alarm["Threshold"] == {"Ref": "DrainAgeAlarmSeconds"}
    assert alarm["AlarmActions"] == [{"Ref": "NotifyTopic"}] and alarm["TreatMissingData"] == "notBreaching"
    # The alarm must fire before instance-drain gives the drain up.
    assert int(T.defaults()["DrainAgeAlarmSeconds"]) < int(T.defaults()["DrainTimeoutSeconds"])
    # The metric and dimension are the ones shared::metrics::drain_line writes.
    source = (REPO / "shared" / "src" / "metrics.rs").read_text()
    assert '"DrainAgeSeconds"' in source and '"Dimensions": [["function"]]' in source


def test_the_stack_outputs_link_the_dashboard() -> None:
    url = T.doc["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"]
    assert "#dashboards/dashboard/${OperatorDashboard}" in url and url.startswith("https://${AWS::Region}.console.")


def test_no_drain_goes_longer_than_half_its_heartbeat_timeout_without_a_heartbeat() -> None:
    """Issue 12 item 4, the arithmetic docs/instance-drain.md writes down: a crashed or
    timed-out look is retried after the visibility timeout, and that retry's heartbeat
    comes within one more invocation: under half the shortest recommended HeartbeatTimeout
    (300 s). A successful look's delay is decide.rs's poll_delay, which assumes a look lasts
    at most LOOK_SECONDS: the function's timeout."""
    timeout = int(T.function_property("instance-drain", "Timeout"))
    props = sqs_event("instance-drain")
    batch, window = int(props["BatchSize"]), int(props.get("MaximumBatchingWindowInSeconds", 0))
    visibility = int(T.resources["DrainQueue"]["Properties"]["VisibilityTimeout"])
    assert (batch, window) == (1, 0), "one record per invocation: no record waits behind another"
    assert visibility + timeout <= 300 // 2, (visibility, timeout)
    decide = (REPO / "functions" / "instance-drain" / "src" / "decide.rs").read_text()
    (look,) = re.findall(r"pub const LOOK_SECONDS: i64 = (\d+);", decide)
    assert int(look) == timeout, "poll_delay must assume the template's function timeout"
    docs = (REPO / "docs" / "instance-drain.md").read_text()
    for written in (f"`Timeout` {timeout} s", f"`BatchSize` {batch}", f"`VisibilityTimeout` {visibility} s",
                    f"{visibility} s + {timeout} s = {visibility + timeout} s"):
        assert written in docs, f"docs/instance-drain.md should say {written!r}"


@pytest.mark.parametrize("names, prefixes", [
    ("ecs-autopilot-*", {"ecs-autopilot-"}),
    ("team-a-*", {"team-a-"}),
    ("drain-exact,team-b-*", {"drain-exact", "team-b-"}),
    ("a*,b*,c,d-*", {"a", "b", "c", "d-"}),
])
def test_the_lifecycle_rule_forwards_the_hooks_lifecycle_hook_names_owns(names: str, prefixes: set[str]) -> None:
    """Issue 12 item 1: the EventBridge rule filters on detail.LifecycleHookName with the
    same names the function owns (one prefix per entry), for the default and custom ones."""
    rule = T.resources["AutoScalingLifecycleRule"]["Properties"]["EventPattern"]
    patterns = T.resolve(rule["detail"]["LifecycleHookName"], {"LifecycleHookNames": names})
    assert {p["prefix"] for p in patterns} == prefixes
    assert T.function_env("instance-drain", {"LifecycleHookNames": names})["LIFECYCLE_HOOK_NAMES"] == names
