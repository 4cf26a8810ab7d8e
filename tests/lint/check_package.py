"""Refuses a deployment whose functions would be uploaded without their binary.

`sam deploy` zips each function's CodeUri directory as it is. From template.yaml
(CodeUri: ., the Cargo workspace) that is the whole repository - target/, .venv, .git -
and no `bootstrap` at the zip's root: the deploy fails on Lambda's size limit or, from a
fresh clone, every function fails every event. `sam build` writes
.aws-sam/build/template.yaml with one directory per function holding its `bootstrap`;
that is the template samconfig.toml deploys, and this check runs before it
(`make deploy`).

Usage: check_package.py [TEMPLATE]   (default .aws-sam/build/template.yaml)
Exit 1 with one line per function that has no executable bootstrap.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from cfnlint.decode import cfn_yaml

BUILT_TEMPLATE = ".aws-sam/build/template.yaml"
# Above this a CodeUri directory is not a function package (Lambda's limit for a
# function's unzipped code is 250 MB; ours are a few MB).
MAX_PACKAGE_BYTES = 250 * 1024 * 1024


def package_problems(template_path: str | os.PathLike[str]) -> list[str]:
    path = Path(template_path)
    if not path.is_file():
        return [f"{path} does not exist: run `sam build` (make sam-build) first"]
    doc = cfn_yaml.load(str(path))
    globals_uri = (doc.get("Globals") or {}).get("Function", {}).get("CodeUri")
    problems = []
    for name, resource in (doc.get("Resources") or {}).items():
        if resource.get("Type") not in ("AWS::Serverless::Function", "AWS::Lambda::Function"):
            continue
        props = resource.get("Properties") or {}
        uri = props.get("CodeUri", globals_uri) if resource["Type"] == "AWS::Serverless::Function" else None
        if not isinstance(uri, str) or uri.startswith("s3://"):
            continue  # already uploaded (a packaged template)
        code = (path.parent / uri).resolve()
        bootstrap = code / "bootstrap"
        if not (bootstrap.is_file() and os.access(bootstrap, os.X_OK)):
            problems.append(f"{name}: CodeUri {uri} ({code}) has no executable bootstrap")
            continue
        size = sum(f.stat().st_size for f in code.rglob("*") if f.is_file())
        if size > MAX_PACKAGE_BYTES:
            problems.append(f"{name}: CodeUri {uri} holds {size} bytes, more than a function package")
    return problems


def main(argv: list[str]) -> int:
    template = argv[1] if len(argv) > 1 else BUILT_TEMPLATE
    problems = package_problems(template)
    for p in problems:
        print(f"check_package: {p}")
    if problems:
        print("check_package: refusing to deploy; build first (make deploy runs sam build)")
        return 1
    print(f"check_package: {template}: every function has its bootstrap")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
