"""Every alert has a runbook an operator can follow (docs/operations.md): what it means, the first three
commands, how to tell it is fixed; and the loss procedures are written step by step, saying what was
tested here. Alerts come from the rules as prod ships them (rendered), so a new rule without a runbook
fails here."""

import re

import pytest
from stack_rules import alert_rules

from infra.paths import PROJECT_DIR

OPERATIONS = (PROJECT_DIR / "docs" / "operations.md").read_text()
ALERTS = sorted(alert_rules("prod"))


def section(heading: str, level: str = "###") -> str:
    match = re.search(rf"^{level} {re.escape(heading)}\n(.*?)(?=^#{{2,3}} |\Z)", OPERATIONS, re.S | re.M)
    assert match, f"docs/operations.md has no '{level} {heading}' section"
    return match.group(1)


def commands(body: str) -> list[str]:
    """The commands a runbook gives first: the lines of its fenced blocks (a continuation line, a
    comment or a blank does not count), or else the items of its numbered list that quote a command."""
    fenced = [line for block in re.findall(r"```[a-z]*\n(.*?)```", body, re.S)
              for line in block.splitlines()
              if line.strip() and not line.startswith((" ", "#"))]
    if fenced:
        return fenced
    return [item for item in re.findall(r"^\d\. (.*?)(?=^\d\. |^\S|\Z)", body, re.S | re.M) if "`" in item]


def test_the_alerts_are_the_rules_of_every_file():
    # Not vacuous: pipeline, services, Kafka, freshness, targets, disks, backups and config alerts.
    assert len(ALERTS) >= 20
    assert {"HydroKafkaUnderReplicatedPartitions", "HydroFreshnessFastBurn", "HydroInfluxDBDown",
            "HydroConfigBundleRefused", "HydroWatchdog"} <= set(ALERTS)


@pytest.mark.parametrize("alert", ALERTS)
def test_each_alert_says_what_it_means_the_first_three_commands_and_when_it_is_fixed(alert):
    body = section(alert)
    severity = alert_rules("prod")[alert]["labels"].get("severity", "none")
    opening = body.strip().split("\n\n")[0].lower()
    # What it means: the first paragraph, which names its severity (or that it is the heartbeat).
    assert severity in opening or alert == "HydroWatchdog", opening
    assert len(commands(body)) >= 3, f"{alert}: fewer than three first commands"
    assert "fixed when" in body.lower(), f"{alert}: no 'Fixed when'"


def test_a_runbook_without_commands_is_caught():
    assert len(commands("Critical. Check the broker.\n\nFixed when it is back.")) == 0
    assert len(commands("1. `a`\n2. `b`\n3. plain words\n")) == 2


@pytest.mark.parametrize("procedure", [
    "A broker VM died, its disk intact",
    "A broker's disk was lost, or restored from a snapshot",
    "A zone was lost",
    "The InfluxDB VM or its disk was lost",
])
def test_the_loss_procedures_are_step_by_step_and_say_what_was_tested(procedure):
    body = section(procedure)
    assert re.search(r"^1\. ", body, re.M) or procedure == "A zone was lost", procedure
    assert "Tested here" in body or "Not tested" in body
    assert "Not tested" in body, f"{procedure}: say what was not tested here"
