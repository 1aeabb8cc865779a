"""Every Google Cloud resource waits, directly or through its inputs, for the APIs it needs."""

import pytest

from infra.gcp import apis

SERVICE = "gcp:projects/service:Service"


@pytest.fixture(scope="module", params=["dev", "prod"])
def planned(request, plans):
    return plans[request.param]


def waits_for(planned, resource):
    by_urn = {r.urn: r for r in planned.resources}
    seen, todo = set(), list(resource.dependencies)
    while todo:
        urn = todo.pop()
        if urn in seen or urn not in by_urn:
            continue
        seen.add(urn)
        todo.extend(by_urn[urn].dependencies)
    return {by_urn[u].inputs.get("service") for u in seen if by_urn[u].type == SERVICE}


def test_the_apis_are_enabled_and_left_on_at_destroy(planned):
    services = planned.of_type(SERVICE)
    assert sorted(s.inputs["service"] for s in services) == sorted(apis.SERVICES)
    assert all(s.inputs["disableOnDestroy"] is False for s in services)
    assert {s.inputs["project"] for s in services} == {f"hydrostream-{planned.stack}"}


def test_every_cloud_resource_waits_for_every_api(planned):
    cloud = [r for r in planned.resources if r.custom and r.type.startswith("gcp:") and r.type != SERVICE]
    assert len(cloud) > 50
    late = {f"{r.type} {r.name}": sorted(set(apis.SERVICES) - waits_for(planned, r)) for r in cloud}
    assert {k: v for k, v in late.items() if v} == {}
