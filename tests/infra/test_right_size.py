"""The cheapest cluster for a stack's load, recomputed by hand from the price table, and the warning an
oversized cluster gets in the plan."""

import itertools

import pytest

from infra import cost, disks, right_size, settings, sizing
from infra.model import derive
from infra.tools import mocks, reports

PRICES = cost.load_prices()
REGION = "europe-west1"
SHAPE = sizing.SHAPES


def test_devs_cheapest_cluster_by_hand():
    # dev: 500/s, an hour's backlog within 15 min: 500 x 5 = 2,500 readings/s needed.
    # e2 in europe-west1: 0.02399337/vCPU-h, 0.00321609/GB-h. e2-highmem-2 (2 vCPU, 16 GB) 0.09944418/h
    # holds both drivers. As a worker: 16,384 - 3,276 -> 13,056 MB for YARN, one 2-core executor of
    # 13,056 - 1,024 (room for an AM) = 12,032 MB; a worker holding both AMs holds no executor. Three
    # guarantee 2 executors (together: 0 + 1 + 1; apart: 1 + 1 + 1), one for the producer, one consumer
    # executor of 2 cores: 8,000 readings/s; AM share 39,168 x 0.1 = 3,916 MB >= 2 x 1,024.
    # Month: (4 x 0.09944418 + 8 vCPU x 0.010) x 730 = 348.78, boot disks 4 x 100 GB x 0.10 = 40.00:
    # 388.78. The next: master e2-highmem-2 with 2 x e2-standard-4 (0.14743092/h; two 2-core executors of
    # 5,888 MB each, one beside both AMs: 3 guaranteed, 2 for the consumer, 16,000/s):
    # (0.09944418 + 2 x 0.14743092 + 10 x 0.010) x 730 + 30.00 = 390.84.
    choice = right_size.cheapest(2500, 100, "pd-balanced", REGION, PRICES)
    assert (choice.master.name, choice.worker.name, choice.workers) == ("e2-highmem-2", "e2-highmem-2", 3)
    assert choice.capacity == 8_000
    assert round(choice.monthly, 2) == 388.78
    other = right_size.cluster(SHAPE["e2-highmem-2"], SHAPE["e2-standard-4"], 2, 100, "pd-balanced", REGION,
                               PRICES)
    assert (other.capacity, round(other.monthly, 2)) == (16_000, 390.84)


def test_the_am_share_rules_out_the_cluster_that_would_otherwise_be_cheapest():
    # 3 x e2-standard-2 (8 GB: 6,144 MB of YARN each) guarantee 2 executors, 8,000 readings/s, for
    # (0.09944418 + 3 x 0.07371546 + 8 x 0.010) x 730 + 40 = 332.43 a month; but the capacity scheduler
    # lets AMs hold 18,432 x 0.1 = 1,843 MB, and the second job's 1,024 MB AM would wait forever.
    with pytest.raises(sizing.SizingError, match=r"hold 1843 MB \(yarn.scheduler.capacity.maximum-am-"
                                                 r"resource-percent 0.1\); the 2 jobs' AMs need 2048 MB"):
        right_size.cluster(SHAPE["e2-highmem-2"], SHAPE["e2-standard-2"], 3, 100, "pd-balanced", REGION,
                           PRICES)
    # A fourth worker: 24,576 x 0.1 = 2,457 MB holds both.
    four = right_size.cluster(SHAPE["e2-highmem-2"], SHAPE["e2-standard-2"], 4, 100, "pd-balanced", REGION,
                              PRICES)
    assert four.capacity == 2 * 2 * 4_000
    # The property the cluster gets is the share modelled.
    spark = sizing.spark_sizing(SHAPE["e2-highmem-2"], SHAPE["e2-standard-2"], 4)
    assert spark.cluster_properties()[
        "capacity-scheduler:yarn.scheduler.capacity.maximum-am-resource-percent"] == "0.1"


def test_prods_derivation_with_one_spare_worker_by_hand(plans):
    # prod: 2,000/s, an hour's backlog within 15 min: 10,000 readings/s, with one worker lost
    # (spare_workers 1). e2-standard-2 workers (6,144 MB of YARN, one 2-core executor of 5,120 MB each;
    # none beside both AMs): 5 of them guarantee 4 executors (together 0 + 4; apart 1 + 1 + 1 + 1 + 1),
    # 3 for the consumer: 24,000/s; with one lost, 4 guarantee 3, 2 for the consumer: 16,000/s >= 10,000,
    # and their AM share 24,576 x 0.1 = 2,457 MB still starts both AMs. 4 workers, one lost: 3 guarantee 2,
    # 1 consumer executor, 8,000/s: too few. 3 x e2-standard-4, one lost: 2 guarantee 3 (1 + 2), 16,000/s,
    # but (0.09944418 + 3 x 0.14743092 + 14 x 0.010) x 730 + 40 = 537.67. 5 x e2-highmem-2, one lost:
    # 16,000/s for (6 x 0.09944418 + 12 x 0.010) x 730 + 60 = 583.17.
    # Month: (0.09944418 + 5 x 0.07371546 + 12 vCPU x 0.010) x 730 = 429.26, boot disks 6 x 10.00: 489.26.
    verdict = plans["prod"].model.gcp.right_size
    chosen = verdict.configured
    assert verdict.pinned == () and chosen == verdict.choice and verdict.spare == 1
    assert (chosen.master.name, chosen.worker.name, chosen.workers) == ("e2-highmem-2", "e2-standard-2", 5)
    assert (chosen.capacity, chosen.carried, chosen.one_lost) == (24_000, 16_000, 16_000)
    assert round(chosen.monthly, 2) == 489.26
    lines = "\n".join(reports.capacity_and_cost(plans["prod"]))
    assert "load:              10,000 readings/s (the larger of twice the rate and the catch-up's read " \
           "rate), met with 1 worker(s) lost (hydrostream:dataproc.spare_workers)" in lines
    assert "cluster:           master e2-highmem-2, 5 x e2-standard-2: 24,000 readings/s (16,000 with 1 " \
           "worker lost), 489.26 USD/month" in lines
    assert "derived: the cheapest for the load (hydrostream:dataproc pins no shape)" in lines
    assert "one worker lost:   the consumer keeps 16,000 readings/s (1.6x the load)" in lines
    assert "warning" not in lines
    # The deployed cluster is that one.
    (cluster,) = plans["prod"].of_type("gcp:dataproc/cluster:Cluster")
    config = cluster.inputs["clusterConfig"]
    assert config["workerConfig"]["machineType"] == "e2-standard-2"
    assert config["workerConfig"]["numInstances"] == 5
    assert config["masterConfig"]["machineType"] == "e2-highmem-2"


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


def test_the_plan_warns_about_a_pinned_oversized_cluster_with_the_saving():
    # prod's cluster before issue 26, pinned: n2-highmem-4 master (0.288244/h) and 3 x n2-standard-8
    # (0.427336/h; 26,112 MB of YARN, two 4-core executors of 12,544 MB each, one beside both AMs): 5
    # executors guaranteed, 4 for the consumer: 64,000 readings/s (32,000 with one worker lost, 3 guarantee
    # 2 consumer executors). 28 vCPUs of premium: (1.570252 + 0.28) x 730 + 4 x 10.00 = 1,390.68 a month.
    # The choice (prod's derivation) gives 24,000 for 489.26: 2.7x the capacity, 901.43 more a month.
    config = mocks.stack_config("prod")
    config["hydrostream:dataproc"] = {**config["hydrostream:dataproc"], "master": "n2-highmem-4",
                                      "worker": "n2-standard-8", "workers": 3}
    planned = mocks.run_plan("prod", config)
    verdict = planned.model.gcp.right_size
    assert verdict.pinned == ("master", "worker", "workers")
    assert (verdict.configured.capacity, verdict.configured.one_lost) == (64_000, 32_000)
    lines = "\n".join(reports.capacity_and_cost(planned))
    assert "cluster:           master n2-highmem-4, 3 x n2-standard-8: 64,000 readings/s (32,000 with 1 " \
           "worker lost), 1,390.68 USD/month" in lines
    assert "pinned in the stack file (hydrostream:dataproc.master, hydrostream:dataproc.worker, " \
           "hydrostream:dataproc.workers)" in lines
    assert "processes 3x what the cheapest one for this load does (more than 2x); it would save " \
           "901.43 USD/month" in lines


def test_a_pinned_cluster_of_exactly_twice_the_choice_is_not_warned_about():
    # staging's cluster before issue 26: n2-standard-4 master and 2 x n2-standard-4 (13,056 MB of YARN, two
    # 2-core executors each): 3 guaranteed, 2 for the consumer, 16,000 readings/s: exactly twice the
    # 8,000 of the choice for 2,500 readings/s (3 x e2-highmem-2).
    config = mocks.stack_config("staging")
    config["hydrostream:dataproc"] = {"master": "n2-standard-4", "worker": "n2-standard-4", "workers": 2}
    verdict = mocks.run_plan("staging", config).model.gcp.right_size
    assert (verdict.configured.capacity, verdict.choice.capacity) == (16_000, 8_000)
    assert not verdict.oversized


@pytest.mark.parametrize("stack", ["dev", "staging"])
def test_dev_and_staging_take_the_choice(plans, stack):
    verdict = plans[stack].model.gcp.right_size
    assert verdict.pinned == () and verdict.configured == verdict.choice
    assert (verdict.choice.worker.name, verdict.choice.workers) == ("e2-highmem-2", 3)
    lines = "\n".join(reports.capacity_and_cost(plans[stack]))
    # One worker lost: 2 x e2-highmem-2 guarantee 1 executor (0 beside both AMs + 1), the producer's.
    assert "one worker lost:   the consumer keeps 0 readings/s (0.0x the load) until the worker is back; a " \
           "job restarted meanwhile starts (the AM share holds both AMs)" in lines
    assert "warning" not in lines


def test_a_partly_pinned_cluster_gets_the_cheapest_rest():
    # dev with its workers pinned to e2-standard-4: 2 of them carry 2,500 readings/s (16,000), under the
    # cheapest master that holds both drivers.
    config = mocks.stack_config("dev")
    config["hydrostream:dataproc"] = {**config["hydrostream:dataproc"], "worker": "e2-standard-4"}
    planned = mocks.run_plan("dev", config)
    cluster = planned.model.gcp.cluster
    assert (cluster.master.name, cluster.worker.name, cluster.workers) == ("e2-highmem-2", "e2-standard-4", 2)
    assert planned.model.gcp.right_size.reason == (
        "the cheapest for the load with what the stack file pins (hydrostream:dataproc.worker)")


def test_a_load_no_cluster_carries_is_refused_naming_the_keys():
    # 1,000,000 readings/s: 5,000,000 while behind, more than 16 workers of any shape process.
    config = {**mocks.stack_config("dev"), "hydrostream:jobs": {"rate": 1_000_000}}
    with pytest.raises(settings.SettingsError) as refused:
        derive(settings.parse_settings("dev", config))
    message = str(refused.value)
    assert "stack 'dev'" in message and "nothing was deployed" in message
    assert "no cluster of at most 16 workers processes 5,000,000 readings/s" in message
    assert "hydrostream:dataproc.master" in message and "hydrostream:jobs.rate" in message


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
