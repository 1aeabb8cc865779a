"""The alert rules and their promtool unit tests as a stack ships them: rendered with the stack's
`AlertRules` (infra/model.py), the way the Prometheus config volume is (infra/render/prometheus_volume.py)."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra import model
from infra.render.prometheus_volume import RULES_DIR, UNIT_TESTS_DIR, AlertRules, monitoring_files
from infra.settings import parse_settings
from infra.tools import mocks

# The stacks whose thresholds the promtool unit tests run with (the acceptance: dev and prod).
UNIT_TEST_STACKS = ("dev", "prod")


def stack_alerts(stack: str) -> AlertRules:
    """The stack's values in its alert rules, from its stack file."""
    return model.alert_rules(parse_settings(stack, mocks.stack_config(stack)))


def rule_texts(stack: str) -> dict[str, str]:
    """Rendered rule file name -> its text, for `stack`."""
    return monitoring_files(RULES_DIR, stack_alerts(stack))


def rule_documents(stack: str) -> dict[str, dict]:
    """Rendered rule file name -> its parsed YAML, for `stack`."""
    return {name: yaml.safe_load(text) for name, text in rule_texts(stack).items()}


def alert_rules(stack: str) -> dict[str, dict]:
    """alert name -> rule, over every rendered rule file of `stack`."""
    alerts: dict[str, dict] = {}
    for document in rule_documents(stack).values():
        for group in document["groups"]:
            for rule in group["rules"]:
                assert rule["alert"] not in alerts, f"alert {rule['alert']} is defined twice"
                alerts[rule["alert"]] = rule
    return alerts


def unit_test_texts(stack: str) -> dict[str, str]:
    """Rendered promtool unit test file name -> its text, for `stack`."""
    return monitoring_files(UNIT_TESTS_DIR, stack_alerts(stack))


def write_rules_and_tests(directory: Path, stack: str, rules: dict[str, str] | None = None) -> Path:
    """rules/ and tests/ side by side in `directory` (the tests name ../rules/<file>), rendered for
    `stack`, with `rules` (name -> text) instead of the rendered rules when given; returns tests/."""
    for folder, files in (("rules", rules if rules is not None else rule_texts(stack)),
                          ("tests", unit_test_texts(stack))):
        (directory / folder).mkdir()
        for name, text in files.items():
            (directory / folder / name).write_text(text)
    return directory / "tests"
