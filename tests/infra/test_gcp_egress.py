"""Egress closed by default, read from the plans: each role's allowed egress listed, the deny-all below it,
and the private path to Google APIs (Private Google Access on the subnet, DNS to private.googleapis.com).

The listing is computed from the firewall rules the real program registers, the way GCP evaluates them
(a rule applies to an instance when it names the instance's service account, or no target at all; each
role's account is read from the plan's role -> account mapping); the expected lists are written out by
hand from what each role does (docs/operations.md, "Egress").
"""

from __future__ import annotations

import ipaddress

import pytest

from infra import catalog
from infra.gcp import firewall
from infra.tools import mocks

FIREWALL = "gcp:compute/firewall:Firewall"
ROLES = (*catalog.ROLES, catalog.DATAPROC)
EVERYWHERE = "0.0.0.0/0"


def egress_rules(p: mocks.Plan) -> list[mocks.PlannedResource]:
    return [r for r in p.of_type(FIREWALL) if r.inputs.get("direction") == "EGRESS"]


def priority(rule: mocks.PlannedResource) -> int:
    return int(rule.inputs.get("priority", 1000))


def targets(rule: mocks.PlannedResource) -> list[str]:
    """Whom a rule selects: its target service accounts (tags would too, but no rule may name one)."""
    return (rule.inputs.get("targetServiceAccounts") or []) + (rule.inputs.get("targetTags") or [])


def applies(rule: mocks.PlannedResource, account: str) -> bool:
    return not targets(rule) or account in targets(rule)


def blocks(rule: mocks.PlannedResource) -> str:
    """A rule's protocols and ports, e.g. `tcp:443`, `udp`, `all`."""
    found = []
    for block in rule.inputs.get("allows") or rule.inputs.get("denies") or []:
        ports = block.get("ports") or []
        found.append(f"{block['protocol']}:{','.join(ports)}" if ports else block["protocol"])
    return " ".join(found)


def allowed_egress(p: mocks.Plan) -> dict[str, list[str]]:
    """Role -> `destination protocol:ports` for every egress allow that applies to it and ranks above
    the lowest deny covering everything (what the deny does not shadow)."""
    denies = [r for r in egress_rules(p) if r.inputs.get("denies")]
    floor = min((priority(r) for r in denies if EVERYWHERE in (r.inputs.get("destinationRanges") or [])
                 and not targets(r)), default=65536)
    accounts = p.outputs["service_accounts"]    # role -> its account, as the stack exports it
    listing: dict[str, list[str]] = {}
    for role in ROLES:
        listing[role] = sorted(
            f"{destination} {blocks(rule)}" for rule in egress_rules(p)
            if rule.inputs.get("allows") and applies(rule, accounts[role]) and priority(rule) < floor
            for destination in rule.inputs.get("destinationRanges") or [EVERYWHERE])
    return listing


def egress_violations(p: mocks.Plan) -> list[str]:
    """Egress is closed: a deny-all applies to every instance below every allow; an allow to an internet
    address names its ports; nothing but the subnet is open on every port."""
    found = []
    rules = egress_rules(p)
    deny_all = [r for r in rules if r.inputs.get("denies") == [{"protocol": "all"}]
                and r.inputs.get("destinationRanges") == [EVERYWHERE] and not targets(r)]
    if not deny_all:
        found.append("no egress deny-all for every instance: GCP's implied rule allows all egress")
    floor = min((priority(r) for r in deny_all), default=65535)
    subnet = ipaddress.ip_network(p.settings.network.subnet_cidr)
    for rule in rules:
        if not rule.inputs.get("allows"):
            continue
        if priority(rule) >= floor:
            found.append(f"{rule.name}: priority {priority(rule)} does not rank above the deny-all ({floor})")
        if not targets(rule):
            found.append(f"{rule.name}: applies to every instance (no target service account)")
        for cidr in rule.inputs.get("destinationRanges") or [EVERYWHERE]:
            inside = ipaddress.ip_network(cidr).subnet_of(subnet)
            for block in rule.inputs["allows"]:
                if not inside and not block.get("ports"):
                    found.append(f"{rule.name}: {block['protocol']} to {cidr} on every port")
    return found


SUBNET = {"dev": "10.20.0.0/24", "staging": "10.30.0.0/24", "prod": "10.40.0.0/24"}


@pytest.mark.parametrize("stack", ("dev", "staging", "prod"))
def test_each_roles_egress_is_listed_and_nothing_else(plans, stack):
    p = plans[stack]
    assert p.settings.network.subnet_cidr == SUBNET[stack]
    internal = f"{SUBNET[stack]} tcp udp icmp"
    apis = "199.36.153.8/30 tcp:443"
    https = "0.0.0.0/0 tcp:443"
    relays = {"dev": [], "staging": [https, "0.0.0.0/0 tcp:587"],               # webhook, SMTP relay
              "prod": [https, https, "0.0.0.0/0 tcp:587"]}[stack]              # + PagerDuty
    expected = {
        # Image pulls from Docker Hub; Google APIs; Kafka's replication and clients inside the subnet.
        catalog.BROKER: sorted([internal, apis, https]),
        catalog.TSDB: sorted([internal, apis, https]),
        catalog.MONITORING: sorted([internal, apis, https, *relays]),
        # Nothing on the internet: the jobs' jars and Python wheels ship with the release.
        catalog.DATAPROC: sorted([internal, apis]),
    }
    listing = allowed_egress(p)
    print(f"\n{stack} egress by role:\n" + "\n".join(f"  {role}: {', '.join(items)}"
                                                       for role, items in listing.items()))
    assert listing == expected
    assert egress_violations(p) == []


def test_what_each_internet_flow_is_for_is_named_in_its_rule(plans):
    rules = {r.inputs["name"]: r for r in egress_rules(plans["prod"])}
    assert "registry-1.docker.io" in rules["hydrostream-egress-registries-broker"].inputs["description"]
    assert "hydrostream-egress-pypi" not in rules  # the wheels ship with the release
    assert "events.pagerduty.com" in rules["hydrostream-egress-pagerduty"].inputs["description"]
    assert "smtp-relay.gmail.com:587" in rules["hydrostream-egress-smtp-relay"].inputs["description"]
    deny = rules["hydrostream-egress-deny-all"]
    assert priority(deny) == firewall.EGRESS_DENY_PRIORITY and deny.inputs["logConfig"]
    # The deny is created after every allow and the DNS records: no window without Google APIs.
    assert set(deny.dependencies) >= {r.urn for r in egress_rules(plans["prod"]) if r is not deny}
    assert {u for u in deny.dependencies if "RecordSet" in u}


def test_google_apis_resolve_to_private_googleapis_on_the_subnet(plans):
    p = plans["dev"]
    (subnet,) = p.of_type("gcp:compute/subnetwork:Subnetwork")
    assert subnet.inputs["privateIpGoogleAccess"] is True
    (zone,) = p.of_type("gcp:dns/managedZone:ManagedZone")
    assert (zone.inputs["dnsName"], zone.inputs["visibility"]) == ("googleapis.com.", "private")
    (network,) = zone.inputs["privateVisibilityConfig"]["networks"]
    assert network["networkUrl"]
    records = {r.inputs["name"]: r.inputs for r in p.of_type("gcp:dns/recordSet:RecordSet")}
    assert records["private.googleapis.com."]["type"] == "A"
    assert records["private.googleapis.com."]["rrdatas"] == [
        "199.36.153.8", "199.36.153.9", "199.36.153.10", "199.36.153.11"]
    wildcard = records["*.googleapis.com."]
    assert (wildcard["type"], wildcard["rrdatas"]) == ("CNAME", ["private.googleapis.com."])
    apis = {r.inputs["service"] for r in p.of_type("gcp:projects/service:Service")}
    assert "dns.googleapis.com" in apis


# --- the policy fails when egress opens -----------------------------------------------------------

def rule(resource_name: str, **inputs) -> mocks.PlannedResource:
    return mocks.PlannedResource(type=FIREWALL, name=resource_name, urn=f"urn:{resource_name}", parent="",
                                custom=True, inputs={"direction": "EGRESS", **inputs},
                                secret_paths=frozenset(), protect=False, delete_before_replace=False,
                                retain_on_delete=False, dependencies=(), ignore_changes=())


def test_a_plan_without_the_deny_all_is_reported(plans):
    real = plans["dev"]
    kept = [r for r in real.resources if r.inputs.get("name") != "hydrostream-egress-deny-all"]
    open_plan = mocks.Plan("dev", kept, real.outputs, real.secret_outputs, real.settings)
    assert egress_violations(open_plan) == [
        "no egress deny-all for every instance: GCP's implied rule allows all egress"]


def test_an_allow_to_the_internet_on_every_port_or_below_the_deny_is_reported(plans):
    real = plans["dev"]
    tsdb = real.outputs["service_accounts"][catalog.TSDB]
    wide = rule("wide", name="w", targetServiceAccounts=[tsdb], destinationRanges=["0.0.0.0/0"],
                allows=[{"protocol": "tcp"}])
    shadowed = rule("late", name="l", targetServiceAccounts=[tsdb], destinationRanges=["203.0.113.0/24"],
                    allows=[{"protocol": "tcp", "ports": ["22"]}], priority=65535)
    untargeted = rule("untargeted", name="u", destinationRanges=["203.0.113.0/24"],
                    allows=[{"protocol": "tcp", "ports": ["25"]}])
    broken = mocks.Plan("dev", [*real.resources, wide, shadowed, untargeted], real.outputs,
                       real.secret_outputs, real.settings)
    assert egress_violations(broken) == [
        "wide: tcp to 0.0.0.0/0 on every port",
        "late: priority 65535 does not rank above the deny-all (65534)",
        "untargeted: applies to every instance (no target service account)",
    ]
    # The listing shows what opened, and leaves out what the deny shadows.
    assert "0.0.0.0/0 tcp" in allowed_egress(broken)[catalog.TSDB]
    assert "203.0.113.0/24 tcp:22" not in allowed_egress(broken)[catalog.TSDB]


@pytest.mark.parametrize(("build", "message"), [
    (lambda: firewall.EgressFlow("x", (catalog.TSDB,), firewall.INTERNET, (), ("anything",)),
     "to the internet only on named ports"),
    (lambda: firewall.EgressFlow("x", (), firewall.GOOGLE_APIS, (443,), ("apis",)), "no source role"),
])
def test_an_open_egress_flow_is_refused_by_name(build, message):
    with pytest.raises(ValueError, match=message):
        build()
