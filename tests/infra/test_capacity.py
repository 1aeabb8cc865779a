"""Consumer capacity: executors x cores x the measured per-core rate; settings refuse above half of it."""

import re

import pytest

from infra import capacity, settings, sizing
from infra.model import derive
from infra.tools import mocks, reports

# The steady-state benchmark's figure (sizing.CONSUMER_READINGS_PER_CORE, checked below): written out so
# that the limits below are computed by hand, not from the constant they check.
PER_CORE = 4_000


def sized(executors: int, cores: int) -> sizing.SparkSizing:
    return sizing.SparkSizing(
        yarn_memory_mb=0, yarn_vcores=0, executor_cores=cores, executor_memory_mb=0,
        executor_overhead_mb=0, executors_per_worker=0, consumer_executors=executors,
        producer_executors=1, driver_memory_mb=0, driver_overhead_mb=0, shuffle_partitions=0)


def test_capacity_is_executors_times_cores_times_the_per_core_rate():
    consumer = capacity.consumer_capacity(sized(3, 4), rate=2000, readings_per_core=1000)
    assert consumer.cores == 12
    assert consumer.readings_per_second == 12_000
    assert consumer.max_rate == 6_000
    assert consumer.headroom == 6.0
    assert consumer.fits


@pytest.mark.parametrize(("rate", "fits"), [(6_000, True), (6_001, False)])
def test_a_rate_fits_up_to_half_the_capacity(rate, fits):
    assert capacity.consumer_capacity(sized(3, 4), rate, readings_per_core=1000).fits is fits


def test_the_report_shows_capacity_rate_and_headroom():
    lines = "\n".join(capacity.report(capacity.consumer_capacity(sized(3, 4), 2000, 1000), 2000))
    assert "3 executors x 4 cores x 1000 readings/s per core = 12000 readings/s" in lines
    assert "2000 readings/s (hydrostream:jobs.rate; at most 6000)" in lines
    assert "6.0x the configured rate" in lines


def test_the_measured_rate_is_recorded_with_its_command_and_date():
    # local[1] of the steady-state benchmark of 2026-12-07: 4,000 readings/s sustained on one core.
    assert sizing.CONSUMER_READINGS_PER_CORE == PER_CORE
    assert sizing.CONSUMER_THROUGHPUT_MEASURED_ON == "2026-12-07"
    command = sizing.CONSUMER_THROUGHPUT_COMMAND
    assert command.startswith(".venv/bin/python benchmarks/steady_state.py --json ")
    assert "--masters local[1],local[2]" in command and "--steps 2000,4000,8000" in command
    assert "--source kafka --sink influxdb --trigger 30s" in command


def dev(**jobs_and_dataproc) -> dict:
    """dev's stack file with its cluster pinned to a master and 2 x e2-standard-4 (the settings check a
    pinned cluster's capacity; a derived one is chosen to carry the load), and the given keys."""
    config = mocks.stack_config("dev")
    config["hydrostream:dataproc"] = {**config["hydrostream:dataproc"], "master": "e2-standard-4",
                                      "worker": "e2-standard-4", "workers": 2}
    for section in ("jobs", "dataproc"):
        values = {k.split("__")[1]: v for k, v in jobs_and_dataproc.items() if k.startswith(section)}
        if values:
            config[f"hydrostream:{section}"] = {**(config.get(f"hydrostream:{section}") or {}), **values}
    return config


# dev: 2 x e2-standard-4 workers = 8 vCPUs in executors of 2 cores, 4 slots; one for the
# application masters, one for the producer, 2 consumer executors = 4 consumer cores.
DEV_MAX_RATE = 4 * PER_CORE // 2


# Half the capacity is the bound when a backlog may take as long to drain as it took to build (an hour's
# outage within an hour: 2x the rate while behind); the default catch-up (within 15 minutes) needs 5x.
SLOW_CATCH_UP = "1h"


def test_dev_accepts_a_rate_of_half_its_capacity():
    slow = dev(jobs__rate=DEV_MAX_RATE, jobs__catch_up_within=SLOW_CATCH_UP)
    accepted = settings.parse_settings("dev", slow)
    assert accepted.jobs.rate == DEV_MAX_RATE
    # The default catch-up needs 5x: a fifth of the capacity is then the most.
    with pytest.raises(settings.SettingsError, match=re.escape("hydrostream:jobs.catch_up_within = '15m'")):
        settings.parse_settings("dev", dev(jobs__rate=DEV_MAX_RATE))
    assert settings.parse_settings("dev", dev(jobs__rate=4 * PER_CORE // 5)).jobs.rate == 4 * PER_CORE // 5


def test_dev_refuses_a_rate_above_half_its_capacity_naming_the_keys_to_change():
    with pytest.raises(settings.SettingsError) as refused:
        settings.parse_settings("dev", dev(jobs__rate=DEV_MAX_RATE + 1))
    message = str(refused.value)
    assert "stack 'dev'" in message and "nothing was deployed" in message
    assert (f"hydrostream:jobs.rate = {DEV_MAX_RATE + 1}: expected at most {DEV_MAX_RATE} readings/s"
            in message)
    assert "hydrostream:dataproc.worker" in message and "hydrostream:dataproc.workers" in message
    assert f"2 executors x 2 cores process at {PER_CORE} readings/s per core" in message


def test_more_workers_lift_the_limit():
    # 4 workers: 8 slots - 2 = 6 consumer executors x 2 cores = 12 cores, so 6 x the per-core rate fits.
    rate = 6 * PER_CORE
    with pytest.raises(settings.SettingsError):
        settings.parse_settings("dev", dev(jobs__rate=rate))
    wider = dev(jobs__rate=rate, dataproc__workers=4, jobs__catch_up_within=SLOW_CATCH_UP)
    assert settings.parse_settings("dev", wider).jobs.rate == rate


def test_the_local_target_is_not_held_to_dataproc_executors():
    local = settings.parse_settings("local", {"hydrostream:target": "local",
                                              "hydrostream:jobs": {"rate": 1_000_000}})
    assert local.jobs.rate == 1_000_000
    lines = "\n".join(capacity.report(None, 1_000_000))
    assert f"needs at least {-(-1_000_000 // (PER_CORE // 2))} of them" in lines


@pytest.mark.parametrize("stack", ["dev", "staging", "prod"])
def test_every_gcp_stack_file_fits_its_consumer(stack):
    loaded = settings.parse_settings(stack, mocks.stack_config(stack))
    consumer = capacity.consumer_capacity(derive(loaded).gcp.spark, loaded.jobs.rate)
    assert consumer.headroom >= 2


# --- catch-up ----------------------------------------------------------------------------------------

def test_a_backlog_drains_at_the_read_rate_less_the_arrivals():
    # 1,000/s arriving; 90,000 per 30 s trigger = 3,000/s read while behind; 2,000/s net. An hour's
    # backlog (3,600,000 readings) drains in 1,800 s.
    capped = capacity.CatchUp(rate=1000, read_cap=90_000, trigger_s=30, capacity=12_000)
    assert (capped.read_rate, capped.limited_by) == (3000, "read cap")
    assert capped.seconds(3600) == 1800
    # A capacity below the cap's rate is what limits: 2,500/s read, 1,500/s net, 2,400 s.
    slow = capacity.CatchUp(rate=1000, read_cap=90_000, trigger_s=30, capacity=2500)
    assert (slow.read_rate, slow.limited_by, slow.seconds(3600)) == (2500, "capacity", 2400)
    # Reading no faster than readings arrive: never drains.
    assert capacity.CatchUp(1000, 30_000, 30, None).seconds(60) == float("inf")
    assert capacity.duration_text(float("inf")) == "never (the lag grows)"
    assert (capacity.duration_text(1800), capacity.duration_text(4 * 3600)) == ("30 min", "4.0 h")


def test_the_plan_prints_prods_catch_up_recomputed_by_hand(plans):
    # prod: 2,000/s, 30 s trigger, 168 h retention; an hour's backlog within 15 minutes needs
    # 2,000 x (1 + 3,600 / 900) = 10,000 readings/s while behind: a read cap of 300,000 per trigger.
    # Its 3 consumer executors x 2 cores x 4,000 = 24,000/s do not limit it. Net 8,000/s: an hour's
    # 7,200,000 readings drain in 900 s; the whole retention's 1,209,600,000 in 151,200 s = 42.0 h.
    lines = "\n".join(reports.capacity_and_cost(plans["prod"]))
    assert "reads 10,000 readings/s while behind (limited by the read cap: " \
           "hydrostream:jobs.max_offsets_per_trigger 300,000 per 30 s trigger), 8,000/s net" in lines
    assert "after 1 h down:    drained in 15 min" in lines
    assert "a full retention:  168 h of readings drained in 42.0 h" in lines
    (consumer,) = [r for r in plans["prod"].of_type("gcp:dataproc/job:Job")
                   if r.inputs["labels"]["job"] == "consumer"]
    args = consumer.inputs["pysparkConfig"]["args"]
    assert args[args.index("--max-offsets-per-trigger") + 1] == "300000"
