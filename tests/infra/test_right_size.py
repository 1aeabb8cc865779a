"""The cheapest cluster for a stack's load, recomputed by hand from the price table, and the warning an
oversized cluster gets in the plan."""

import itertools

import pytest

from infra import cost, disks, right_size, sizing
from infra.tools import reports

PRICES = cost.load_prices()
REGION = "europe-west1"
SHAPE = sizing.SHAPES


def test_devs_cheapest_cluster_by_hand():
    # dev: 500/s, an hour's backlog within 15 min: 500 x 5 = 2,500 readings/s needed.
    # e2 in europe-west1: 0.02399337/vCPU-h, 0.00321609/GB-h. e2-highmem-2 (2 vCPU, 16 GB) 0.09944418/h
    # holds both drivers; e2-standard-2 (2 vCPU, 8 GB) 0.07371546/h. Three of them guarantee 2 executors
    # in any AM placement (together: 0 + 1 + 1; apart: 1 + 1 + 1), one for the producer, one consumer
    # executor of 2 cores: 38,000 readings/s.
    # Month: (0.09944418 + 3 x 0.07371546 + 8 vCPU x 0.010) x 730 = 292.43, boot disks 4 x 100 GB x 0.10
    # = 40.00: 332.43.
    choice = right_size.cheapest(2500, 100, "pd-balanced", REGION, PRICES)
    assert (choice.master.name, choice.worker.name, choice.workers) == ("e2-highmem-2", "e2-standard-2", 3)
    assert choice.capacity == 38_000
    assert round(choice.monthly, 2) == 332.43


def test_no_cheaper_accepted_cluster_meets_the_load():
    """Every master, worker and count (not only the cheapest master) is tried here independently."""
    need = 10_000
    choice = right_size.cheapest(need, 100, "pd-balanced", REGION, PRICES)
    accepted = []
    for master, worker, workers in itertools.product(SHAPE.values(), SHAPE.values(), range(2, 9)):
        try:
            sizing.master_shape(master.name)
            sizing.worker_shape(worker.name)
            candidate = right_size.cluster(master, worker, workers, 100, "pd-balanced", REGION, PRICES)
        except sizing.SizingError:
            continue
        accepted.append(candidate)
    meeting = [c for c in accepted if c.capacity >= need]
    assert meeting and min(c.monthly for c in meeting) == pytest.approx(choice.monthly)
    assert choice.capacity >= need


def test_more_load_than_any_cluster_serves_is_a_sizing_error():
    with pytest.raises(sizing.SizingError, match="no cluster of at most 16 workers"):
        right_size.cheapest(100_000_000, 100, "pd-balanced", REGION, PRICES)


def test_the_plan_warns_about_prods_cluster_with_the_saving(plans):
    # prod: 2,000/s; an hour's backlog within 15 min needs 10,000 readings/s: the cheapest is dev's
    # 332.43 cluster (38,000/s). Its pinned n2-highmem-4 master (0.288244/h) and 3 x n2-standard-8
    # (0.427336/h) with 28 vCPUs of premium: (1.570252 + 0.28) x 730 + 4 x 10.00 = 1,390.68 a month for
    # 304,000 readings/s: 8x the capacity, 1,058.25 more a month.
    lines = "\n".join(reports.capacity_and_cost(plans["prod"]))
    assert "load:              10,000 readings/s" in lines
    assert "configured:        master n2-highmem-4, 3 x n2-standard-8: 304,000 readings/s, " \
           "1,390.68 USD/month" in lines
    assert "processes 8x what the cheapest one for this load does (more than 2x); it would save " \
           "1,058.25 USD/month" in lines


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_a_cluster_within_twice_the_cheapest_is_not_warned_about(plans, stack):
    # dev and staging give 76,000 readings/s: exactly twice the cheapest's 38,000.
    verdict = plans[stack].model.gcp.right_size
    assert (verdict.configured.capacity, verdict.choice.capacity) == (76_000, 38_000)
    assert not verdict.oversized
    assert "warning" not in "\n".join(reports.capacity_and_cost(plans[stack]))


def test_the_data_disks_at_the_end_of_retention_by_hand(plans):
    # prod InfluxDB: 2,000 readings/s x 7 fields = 14,000 values/s, plus 12 farms x 4 zones of 23-field
    # window points a minute (18.4/s): 14,018.4 values/s x 3 B x 365 days = 1,326,252,787,200 B =
    # 1,235.2 GiB of 2,000 GB: 62%. Each prod broker: 2,000/s x 243 B x 168 h = 293,932,800,000 B =
    # 273.7 GiB of 500 GB: 55%.
    fills = {fill.what: fill for fill in plans["prod"].model.gcp.disk_fills}
    assert fills["influxdb"].stored_bytes == pytest.approx(1_326_252_787_200)
    assert fills["kafka (each broker)"].stored_bytes == pytest.approx(293_932_800_000)
    lines = "\n".join(reports.capacity_and_cost(plans["prod"]))
    assert "influxdb:          1,235.2 GB of 2,000 GB (62%) at the end of retention" in lines
    assert "kafka (each broker):273.7 GB of 500 GB (55%)" in lines
    assert "warning: above 80%" not in lines
    # The 500 GB prod had before would be 247% full: warned, with the size to give it.
    small = disks.influxdb_fill(2000, 12, 60, 365, 500)
    assert "(247%)" in small.line() and "give it at least 1,544 GB" in small.line()
