"""Creation order the provider cannot infer from inputs: walked on the plan's recorded dependency graph."""

import pytest

from infra.tools import mocks
from tests.infra.conftest import GCP_STACKS

CLUSTER = "gcp:dataproc/cluster:Cluster"
EGRESS = "hydrostream:network:EgressRules"
FIREWALL = "gcp:compute/firewall:Firewall"
RECORDS = "gcp:dns/recordSet:RecordSet"


def depends_on(planned: mocks.Plan, urn: str) -> set[str]:
    """Every URN `urn` waits for, directly or through what it waits for (its parents' waits included)."""
    by_urn = {r.urn: r for r in planned.resources}
    seen: set[str] = set()
    todo = [urn]
    while todo:
        resource = by_urn.get(todo.pop())
        if resource is None:
            continue
        for dependency in resource.dependencies:
            if dependency not in seen:
                seen.add(dependency)
                todo.append(dependency)
    return seen


@pytest.fixture(scope="module", params=GCP_STACKS)
def planned(request, plans) -> mocks.Plan:
    return plans[request.param]


def egress_rules(planned: mocks.Plan) -> list[mocks.PlannedResource]:
    (egress,) = planned.of_type(EGRESS)
    rules = [rule for rule in planned.of_type(FIREWALL) if rule.inputs.get("direction") == "EGRESS"]
    assert rules and all(rule.parent == egress.urn for rule in rules)
    return rules


def test_the_dataproc_cluster_boots_into_the_final_egress_policy(planned):
    # Its nodes reach Cloud Storage at boot only through the egress allow for Google APIs and the private
    # DNS zone that sends *.googleapis.com there: a cluster created beside a deny-all rule whose allows (or
    # whose DNS records) are still being written fails its init and is left in ERROR. Nothing it needs
    # comes through NAT any more (no pip.packages), so NAT is no reason to wait.
    (cluster,) = planned.of_type(CLUSTER)
    waits = depends_on(planned, cluster.urn)
    rules = egress_rules(planned)
    assert {rule.urn for rule in rules} <= waits
    # Egress closes (the deny-all rule) only once the allows and the private zone's records exist.
    (deny,) = [rule for rule in rules if "denies" in rule.inputs]
    records = {record.urn for record in planned.of_type(RECORDS)}
    assert records and records | {rule.urn for rule in rules if rule is not deny} <= depends_on(
        planned, deny.urn)


def test_the_walk_sees_only_real_waits(planned):
    # The egress rules are created without waiting for the cluster: no cycle, and the walk is not vacuous.
    (cluster,) = planned.of_type(CLUSTER)
    for rule in egress_rules(planned):
        assert cluster.urn not in depends_on(planned, rule.urn)


def test_the_cluster_and_each_vm_wait_for_the_grants_they_run_with(planned):
    # An account without its project roles, a bucket or secret without its grant: Dataproc refuses the
    # cluster, a VM fails to fetch its secret at boot. What each runs with resolves only after its grants.
    grants = {r.urn: r for r in planned.resources if r.type.lower().endswith("iammember")}

    def members(urns: set[str]) -> set[tuple[str, str]]:
        return {(grants[u].inputs["member"].split("@")[0].removeprefix("serviceAccount:"),
                 grants[u].type.split("/")[0]) for u in urns if u in grants}

    (cluster,) = planned.of_type(CLUSTER)
    waited = members(depends_on(planned, cluster.urn))
    # Its account's project roles and its buckets' grants.
    assert {("hydro-dataproc", "gcp:projects"), ("hydro-dataproc", "gcp:storage")} <= waited
    for vm in planned.of_type("gcp:compute/instance:Instance"):
        role = vm.inputs["labels"]["role"]
        assert (f"hydro-{role}", "gcp:projects") in members(depends_on(planned, vm.urn)), vm.name
    # The InfluxDB VM reads its admin password and token only once they are granted to it.
    (influxdb,) = [vm for vm in planned.of_type("gcp:compute/instance:Instance")
                   if vm.inputs["labels"]["role"] == "tsdb"]
    assert ("hydro-tsdb", "gcp:secretmanager") in members(depends_on(planned, influxdb.urn))
