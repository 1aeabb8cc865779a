"""Creation order the provider cannot infer from inputs: walked on the plan's recorded dependency graph."""

import pytest

from infra.tools import mocks
from tests.infra.conftest import GCP_STACKS

CLUSTER = "gcp:dataproc/cluster:Cluster"
NAT = "gcp:compute/routerNat:RouterNat"


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


def test_the_dataproc_cluster_waits_for_cloud_nat(planned):
    # Its init installs `dataproc:pip.packages` from PyPI, reachable only through NAT: a cluster created
    # beside a NAT still being configured fails its init and is left in ERROR.
    (cluster,) = planned.of_type(CLUSTER)
    (nat,) = planned.of_type(NAT)
    assert nat.urn in depends_on(planned, cluster.urn)


def test_the_walk_sees_only_real_waits(planned):
    # The NAT itself is created without waiting for the cluster: no cycle, and the walk is not vacuous.
    (cluster,) = planned.of_type(CLUSTER)
    (nat,) = planned.of_type(NAT)
    assert cluster.urn not in depends_on(planned, nat.urn)
    assert depends_on(planned, nat.urn)


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
        role = vm.inputs["tags"][0]
        assert (f"hydro-{role}", "gcp:projects") in members(depends_on(planned, vm.urn)), vm.name
    # The InfluxDB VM reads its admin password and token only once they are granted to it.
    (influxdb,) = [vm for vm in planned.of_type("gcp:compute/instance:Instance")
                   if "tsdb" in vm.inputs["tags"]]
    assert ("hydro-tsdb", "gcp:secretmanager") in members(depends_on(planned, influxdb.urn))
