"""Data Access audit logs, read from the plans: who read a secret's value or a bucket's objects is logged."""

from __future__ import annotations

import pytest

from infra.gcp import audit
from infra.tools import mocks

AUDIT_CONFIG = "gcp:projects/iAMAuditConfig:IAMAuditConfig"
REQUIRED = {"secretmanager.googleapis.com": {"DATA_READ", "DATA_WRITE"},
            "storage.googleapis.com": {"DATA_READ", "DATA_WRITE"}}


def audit_violations(p: mocks.Plan) -> list[str]:
    """Secret Manager and Cloud Storage log data reads and writes, for every member, on the project."""
    logged: dict[str, set[str]] = {}
    found = []
    for config in p.of_type(AUDIT_CONFIG):
        if config.inputs.get("project") != p.settings.gcp.project:
            found.append(f"{config.name}: audits project {config.inputs.get('project')!r}")
        for entry in config.inputs.get("auditLogConfigs") or []:
            if entry.get("exemptedMembers"):
                found.append(f"{config.name}: {entry['logType']} exempts {entry['exemptedMembers']}")
            logged.setdefault(config.inputs.get("service"), set()).add(entry.get("logType"))
    for service, types in REQUIRED.items():
        missing = sorted(types - logged.get(service, set()))
        if missing:
            found.append(f"{service}: no Data Access audit log for {', '.join(missing)}")
    return found


@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_secret_and_storage_data_access_is_logged(plans, stack):
    assert audit_violations(plans[stack]) == []
    assert {c.inputs["service"] for c in plans[stack].of_type(AUDIT_CONFIG)} == set(REQUIRED)


def test_a_stack_without_audit_logs_is_reported(monkeypatch):
    monkeypatch.setattr(audit, "AUDITED_SERVICES", ("storage.googleapis.com",))
    monkeypatch.setattr(audit, "LOG_TYPES", ("DATA_WRITE",))
    assert audit_violations(mocks.run_plan("dev")) == [
        "secretmanager.googleapis.com: no Data Access audit log for DATA_READ, DATA_WRITE",
        "storage.googleapis.com: no Data Access audit log for DATA_READ",
    ]
