"""Every lint suppression in template.yaml must say why and be listed in the README.

checkov skips (Metadata.checkov.skip) need a non-empty `comment`; cfn-lint ignores
(Metadata.cfn-lint.config.ignore_checks) are explained by a YAML comment beside them.
Each suppressed rule id must also appear in the README's list of suppressions, so a new
one can't slip in unreviewed. Usage: check_suppressions.py TEMPLATE README
"""

import sys

from cfnlint.decode import cfn_yaml


def main(template_path: str, readme_path: str) -> int:
    template = cfn_yaml.load(template_path)
    readme = open(readme_path, encoding="utf-8").read()
    problems = []
    count = 0
    for name, resource in template.get("Resources", {}).items():
        metadata = resource.get("Metadata") or {}
        for skip in (metadata.get("checkov") or {}).get("skip") or []:
            count += 1
            rule = skip.get("id", "")
            if not str(skip.get("comment", "")).strip():
                problems.append(f"{name}: checkov skip {rule} has no comment")
            if rule not in readme:
                problems.append(f"{name}: checkov skip {rule} is not listed in {readme_path}")
        config = (metadata.get("cfn-lint") or {}).get("config") or {}
        for rule in config.get("ignore_checks") or []:
            count += 1
            if rule not in readme:
                problems.append(f"{name}: cfn-lint ignore {rule} is not listed in {readme_path}")
    for p in problems:
        print(f"check_suppressions: {p}")
    print(f"check_suppressions: {count} suppressions, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
