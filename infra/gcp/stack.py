"""The GCP environment (dev, staging, prod): every component, wired together."""

from __future__ import annotations

from typing import Any

from infra.gcp.firewall import FirewallRules, FirewallRulesArgs
from infra.gcp.identity import ServiceAccounts, ServiceAccountsArgs
from infra.gcp.network import Network, NetworkArgs
from infra.gcp.secrets import Secrets, SecretsArgs
from infra.gcp.storage import Buckets, BucketsArgs
from infra.settings import StackSettings


def deploy(settings: StackSettings) -> dict[str, Any]:
    """Declare the environment's resources; return the stack outputs (no secret values among them)."""
    network = Network("network", NetworkArgs(settings))
    FirewallRules("firewall", FirewallRulesArgs(settings, network.network_id))
    identity = ServiceAccounts("identity", ServiceAccountsArgs(settings))
    buckets = Buckets("buckets", BucketsArgs(settings, identity.emails))
    secrets = Secrets("secrets", SecretsArgs(settings, identity.emails))

    return {
        "service_accounts": identity.emails,
        "buckets": buckets.names,
        "secret_ids": secrets.ids,
    }
