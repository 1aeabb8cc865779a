"""The plan's report: the consumer's capacity against the configured rate, and the monthly cost."""

from __future__ import annotations

from infra import capacity, cost, disks
from infra.tools.mocks import Plan


def capacity_and_cost(plan: Plan) -> list[str]:
    """The consumer's capacity (the stack model's) against the configured rate, and the monthly cost, of a
    planned stack."""
    model = plan.model
    if model is None:
        return []
    consumer = model.gcp.capacity if model.gcp is not None else None
    try:
        priced = cost.report(cost.estimate(plan))
    except cost.PriceError as error:  # a missing price must not stop a plan or a deploy
        priced = [f"cost: not estimated: {error}"]
    verdict = model.gcp.right_size if model.gcp is not None else None
    sized = verdict.report(cost.load_prices().currency) if verdict is not None else []
    fills = disks.report(model.gcp.disk_fills) if model.gcp is not None else []
    influxdb = model.gcp.influxdb_load.report() if model.gcp is not None else []
    return [*capacity.report(consumer, model.jobs.flags.rate, model.catch_up, model.retention_s), *sized,
            *fills, *influxdb, *priced]
