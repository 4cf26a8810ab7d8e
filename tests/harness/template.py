"""template.yaml read the way CloudFormation would resolve the parts the tests check:
parameters (with their defaults or overrides), conditions, and the environment each
function gets, without deploying anything.

    t = Template.load()
    t.function_env("instance-drain", {"DrainPollSeconds": "60"})   # {"DRAIN_POLL_SECONDS": "60", ...}
    t.condition("AmiRolloutSubscribes", {"AmiRolloutSubscribeToAmiReleases": "true"}, region="eu-west-1")

Intrinsics that name resources resolve to stand-ins (`RESOURCE_STANDINS`); the rest
(`Ref`, `Fn::If`, `Fn::FindInMap`, `Fn::Equals`/`Not`/`And`/`Or`, `Condition`,
`Fn::Split`, `Fn::Select`, a string `Fn::Sub` of parameters and pseudo parameters) are
evaluated.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cfnlint.decode import cfn_yaml

from .events import ACCOUNT
from .iam import TEMPLATE

FUNCTIONS = {
    "instance-drain": "InstanceDrainFunction",
    "ami-rollout": "AmiRolloutFunction",
    "guardduty-responder": "GuardDutyResponderFunction",
    "task-retirement": "TaskRetirementFunction",
}



# What `Ref` to a resource gives, for the resources the functions' environment names.
RESOURCE_STANDINS = {
    "NotifyTopic": f"arn:aws:sns:us-east-1:{ACCOUNT}:ecs-autopilot-NotifyTopic",
    "DrainQueue": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/ecs-autopilot-DrainQueue",
    "RetirementQueue": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/ecs-autopilot-RetirementQueue",
    "AmiRolloutFanOutQueue": f"https://sqs.us-east-1.amazonaws.com/{ACCOUNT}/ecs-autopilot-AmiRolloutFanOutQueue",
}


@dataclass
class Template:
    doc: dict[str, Any]

    @classmethod
    def load(cls, path: Path = TEMPLATE) -> "Template":
        return cls(cfn_yaml.load(str(path)))

    @property
    def parameters(self) -> dict[str, Any]:
        return dict(self.doc["Parameters"])

    @property
    def resources(self) -> dict[str, Any]:
        return dict(self.doc["Resources"])

    def defaults(self) -> dict[str, str]:
        return {name: str(p.get("Default", "")) for name, p in self.parameters.items()}

    def function(self, name: str) -> dict[str, Any]:
        return self.resources[FUNCTIONS[name]]

    def function_property(self, name: str, key: str) -> Any:
        """A function's property, falling back to Globals.Function like SAM does."""
        props = self.function(name)["Properties"]
        if key in props:
            return props[key]
        return self.doc.get("Globals", {}).get("Function", {}).get(key)

    # -- evaluation --------------------------------------------------------

    def resolve(self, value: Any, params: dict[str, str], region: str = "us-east-1", partition: str = "aws") -> Any:
        ctx = _Context(self, {**self.defaults(), **params}, region, partition)
        return ctx.value(value)

    def condition(self, name: str, params: dict[str, str] | None = None, region: str = "us-east-1", partition: str = "aws") -> bool:
        ctx = _Context(self, {**self.defaults(), **(params or {})}, region, partition)
        return ctx.condition(name)

    def function_env(self, name: str, params: dict[str, str] | None = None) -> dict[str, str]:
        """The environment Lambda would give the function: Globals' variables merged
        with the function's own, intrinsics resolved with `params` over the defaults. A
        variable that resolves to `AWS::NoValue` (hub-mode ones in single-account mode) is
        not set, as in Lambda."""
        merged: dict[str, Any] = {}
        merged.update(self.doc.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        merged.update(self.function(name)["Properties"].get("Environment", {}).get("Variables", {}))
        resolved = {k: self.resolve(v, params or {}) for k, v in merged.items()}
        return {k: str(v) for k, v in resolved.items() if v is not None}

    def env_sources(self, name: str) -> dict[str, tuple[str, str | None]]:
        """Per environment variable fed by a parameter: (parameter, the parameter value
        that means "unset", if the variable is `!If [cond, "", !Ref P]` with cond
        `!Equals [!Ref P, V]`)."""
        merged: dict[str, Any] = {}
        merged.update(self.doc.get("Globals", {}).get("Function", {}).get("Environment", {}).get("Variables", {}))
        merged.update(self.function(name)["Properties"].get("Environment", {}).get("Variables", {}))
        out: dict[str, tuple[str, str | None]] = {}
        for var, value in merged.items():
            if isinstance(value, dict) and "Ref" in value and value["Ref"] in self.parameters:
                out[var] = (str(value["Ref"]), None)
            elif isinstance(value, dict) and "Fn::If" in value:
                cond, when_true, when_false = value["Fn::If"]
                equals = self.doc["Conditions"][cond].get("Fn::Equals")
                if when_true == "" and isinstance(when_false, dict) and "Ref" in when_false and equals:
                    param = str(when_false["Ref"])
                    sentinel = next(str(x) for x in equals if not isinstance(x, dict))
                    out[var] = (param, sentinel)
        return out


@dataclass
class _Context:
    template: Template
    params: dict[str, str]
    region: str
    partition: str

    def ref(self, name: str) -> Any:
        pseudo = {"AWS::Region": self.region, "AWS::Partition": self.partition, "AWS::AccountId": ACCOUNT,
                  "AWS::StackName": "ecs-autopilot", "AWS::NoValue": None}
        if name in pseudo:
            return pseudo[name]
        if name in self.params:
            return self.params[name]
        if name in RESOURCE_STANDINS:
            return RESOURCE_STANDINS[name]
        raise KeyError(f"no stand-in for Ref {name}")

    def condition(self, name: str) -> bool:
        return bool(self.value(self.template.doc["Conditions"][name]))

    def value(self, v: Any) -> Any:
        if isinstance(v, list):
            return [self.value(x) for x in v]
        if not isinstance(v, dict):
            return v
        if len(v) != 1:
            return {k: self.value(x) for k, x in v.items()}
        (key, arg), = v.items()
        if key == "Ref":
            return self.ref(str(arg))
        if key == "Condition":
            return self.condition(str(arg))
        if key == "Fn::If":
            cond, a, b = arg
            return self.value(a if self.condition(str(cond)) else b)
        if key == "Fn::Equals":
            a, b = (str(self.value(x)) for x in arg)
            return a == b
        if key == "Fn::Not":
            return not self.value(arg[0])
        if key == "Fn::And":
            return all(self.value(x) for x in arg)
        if key == "Fn::Or":
            return any(self.value(x) for x in arg)
        if key == "Fn::FindInMap":
            m, top, second = (str(self.value(x)) for x in arg)
            return self.template.doc["Mappings"][m][top][second]
        if key == "Fn::Split":
            sep, text = arg
            return str(self.value(text)).split(sep)
        if key == "Fn::Select":
            index, items = arg
            return self.value(items)[int(self.value(index))]
        if key == "Fn::Sub" and isinstance(arg, str):
            import re

            return re.sub(r"\$\{([A-Za-z0-9:]+)\}", lambda m: str(self.ref(m.group(1))), arg)
        return {key: self.value(arg)}
