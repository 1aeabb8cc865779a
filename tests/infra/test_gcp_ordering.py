"""Creation order the provider cannot infer from inputs: walked on the plan's recorded dependency graph."""

import pytest

from infra.tools import plan

CLUSTER = "gcp:dataproc/cluster:Cluster"
NAT = "gcp:compute/routerNat:RouterNat"
GCP_STACKS = ("dev", "staging", "prod")


def depends_on(planned: plan.Plan, urn: str) -> set[str]:
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
def planned(request) -> plan.Plan:
    return plan.run_plan(request.param)


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
