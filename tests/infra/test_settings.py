"""Stack settings: every stack file validates, and each kind of bad value is named in one message."""

import json

import pytest

from infra import settings as settings_module
from infra import sizing
from infra.settings import STACKS, SettingsError, parse_settings
from infra.tools import mocks

GCP = {"gcp:project": "hydrostream-dev", "gcp:region": "europe-west1", "gcp:zone": "europe-west1-b"}


def error_for(config, stack="dev"):
    with pytest.raises(SettingsError) as caught:
        parse_settings(stack, config)
    return str(caught.value)


@pytest.mark.parametrize("stack", STACKS)
def test_every_stack_file_validates(stack):
    settings = parse_settings(stack, mocks.stack_config(stack))
    assert settings.stack == stack
    assert settings.labels == {"app": "hydrostream", "env": stack}
    assert settings.target == ("local" if stack == "local" else "gcp")
    assert (settings.gcp is None) == (stack == "local")


def test_stack_files_hold_only_differences_and_defaults_fill_the_rest():
    dev = parse_settings("dev", {**GCP, "hydrostream:kafka": {"partitions": 12}})
    assert dev.kafka.partitions == 12
    assert dev.kafka.machine == sizing.SHAPES["e2-standard-2"]
    assert (dev.dataproc.master, dev.dataproc.worker, dev.dataproc.workers) == (None, None, None)  # derived
    assert dev.dataproc.spare_workers == 0
    assert dev.jobs.release is None
    assert dev.protect is False


def test_structured_config_arrives_as_json_text_under_the_cli():
    # The Pulumi CLI hands object values to the program as JSON strings.
    dev = parse_settings("dev", {**GCP, "hydrostream:dataproc": '{"worker": "n2-standard-8", "workers": 3}'})
    assert dev.dataproc.worker.name == "n2-standard-8"
    assert dev.dataproc.workers == 3


def test_e2_medium_worker_is_refused_naming_key_value_and_reason():
    message = error_for({**GCP, "hydrostream:dataproc": {"worker": "e2-medium"}})
    assert "stack 'dev'" in message
    assert "hydrostream:dataproc.worker = 'e2-medium'" in message
    assert "shared-core" in message and "143" in message


def test_unknown_machine_type_is_refused_listing_known_ones():
    message = error_for({**GCP, "hydrostream:dataproc": {"master": "n2-standard-99"}})
    assert "hydrostream:dataproc.master = 'n2-standard-99': expected a supported machine type " \
           "(unknown machine type; known: " in message
    assert "e2-standard-4" in message


def test_too_few_executor_slots_are_refused():
    pinned = {"master": "e2-standard-4", "worker": "e2-standard-2", "workers": 2}
    message = error_for({**GCP, "hydrostream:dataproc": pinned})
    assert "hydrostream:dataproc = '2 x e2-standard-2'" in message
    assert "guarantees 1 executor(s) beside the two application masters" in message


def test_unknown_keys_are_named_at_both_levels():
    message = error_for({**GCP, "hydrostream:dataproc": {"workres": 3}, "hydrostream:kafak": {}})
    assert "hydrostream:dataproc.workres = 3: expected one of the keys master, worker, workers" in message
    assert "hydrostream:kafak = {}: expected one of the keys" in message
    assert "2 problems" in message


def test_malformed_cidr_names_the_key():
    message = error_for({**GCP, "hydrostream:network": {"subnet_cidr": "10.0.0.0/33"}})
    assert "hydrostream:network.subnet_cidr = '10.0.0.0/33': expected an IPv4 CIDR" in message


@pytest.mark.parametrize("cidr", ["0.0.0.0/0", "10.0.0.1/24", "not-a-cidr"])
def test_grafana_source_ranges_never_open_to_everyone(cidr):
    message = error_for({**GCP, "hydrostream:network": {"grafana_source_ranges": ["203.0.113.0/24", cidr]}})
    assert f"hydrostream:network.grafana_source_ranges = ['203.0.113.0/24', '{cidr}']" in message


def test_public_subnet_range_is_refused():
    message = error_for({**GCP, "hydrostream:network": {"subnet_cidr": "8.8.8.0/24"}})
    assert "private (RFC 1918)" in message


@pytest.mark.parametrize(("value", "expected"),
                         [("3", "an integer"), (True, "an integer"), (2.5, "an integer")])
def test_wrong_types_are_named(value, expected):
    message = error_for({**GCP, "hydrostream:dataproc": {"workers": value}})
    assert f"hydrostream:dataproc.workers = {value!r}: expected {expected}" in message


def test_out_of_range_values_say_the_range():
    message = error_for({**GCP, "hydrostream:kafka": {"partitions": 0}})
    assert "hydrostream:kafka.partitions = 0: expected an integer from 1 to 256" in message


def test_unknown_region_and_zone_outside_region():
    assert "gcp:region = 'mars-north1': expected one of europe-west1" in error_for(
        {**GCP, "gcp:region": "mars-north1"})
    message = error_for({**GCP, "gcp:zone": "us-central1-a"})
    assert "gcp:zone = 'us-central1-a': expected a zone of europe-west1: europe-west1-b" in message


def test_missing_project_is_named():
    config = dict(GCP)
    del config["gcp:project"]
    assert "gcp:project = None: expected a Google Cloud project id" in error_for(config)


def test_release_pin_must_be_a_quoted_digest():
    # An all-digit digest left unquoted in YAML arrives as a number.
    message = error_for({**GCP, "hydrostream:jobs": {"release": 0}})
    assert "hydrostream:jobs.release = 0: expected a release digest in quotes" in message
    assert "64 lowercase hex" in error_for({**GCP, "hydrostream:jobs": {"release": "ABC"}})


def test_trigger_and_durations():
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": {"trigger": "available-now"}}).jobs.trigger == \
        "available-now"
    assert "a positive duration such as 500ms, 30s, 5m, 1h or 1d" in error_for(
        {**GCP, "hydrostream:jobs": {"window": "5 minutes"}})
    # The jobs' own grammar (hydrostream_jobs.durations): what the settings take, the consumer takes.
    daily = {"window": "1d", "slide": "1h", "trigger": "500ms"}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": daily}).jobs.window == "1d"


def test_local_ports_stay_on_loopback():
    message = error_for({"hydrostream:target": "local", "hydrostream:local": {"bind_address": "0.0.0.0"}},
                        stack="local")
    assert "hydrostream:local.bind_address = '0.0.0.0': expected a loopback address" in message


def test_unknown_stack_and_target():
    message = error_for({**GCP, "hydrostream:target": "aws"}, stack="qa")
    assert "stack = 'qa': expected one of local, dev, staging, prod" in message
    assert "hydrostream:target = 'aws': expected one of gcp, local" in message


def test_invalid_settings_register_no_resource():
    monitor = mocks.RecordingMonitor(mocks.HydroMocks())
    config = {**mocks.stack_config("dev"), "hydrostream:dataproc": {"worker": "e2-medium"}}
    with pytest.raises(SettingsError, match=r"hydrostream:dataproc\.worker = 'e2-medium'"):
        mocks.run_plan("dev", config, monitor=monitor)
    assert monitor.registered == []


SETTINGS_PROGRAM = '''
from infra.settings import load_settings
settings = load_settings()
'''


def settings_program(tmp_path):
    """A program that only loads the settings, as infra/__main__.py does first."""
    program = tmp_path / "program.py"
    program.write_text(SETTINGS_PROGRAM)
    return program


def test_values_set_through_the_pulumi_config_reach_the_settings(tmp_path, monkeypatch):
    program = settings_program(tmp_path)
    config = {**GCP, "gcp:region": "us-east1", "gcp:zone": "us-east1-c",
              "hydrostream:jobs": {"rate": 777, "trigger": "available-now"}, "hydrostream:protect": True}
    settings = mocks.run_plan("dev", config, program=program).settings
    assert settings.jobs.rate == 777
    assert settings.jobs.trigger == "available-now"
    assert settings.protect is True
    assert (settings.gcp.region, settings.gcp.zone) == ("us-east1", "us-east1-c")
    assert settings.jobs.window == "5m"  # unset: the default


def test_every_key_the_engine_was_given_is_checked_with_its_value_from_pulumi(tmp_path):
    program = settings_program(tmp_path)
    config = {**GCP, "hydrostream:kafak": {"partitions": 3}, "gcp:projet": "typo", "aws:region": "y"}
    with pytest.raises(SettingsError) as caught:
        mocks.run_plan("dev", config, program=program)
    message = str(caught.value)
    assert "hydrostream:kafak = {'partitions': 3}: expected one of the keys hydrostream:target" in message
    assert "gcp:projet = 'typo': expected one of gcp:project, gcp:region, gcp:zone" in message
    assert "aws:region = 'y': expected a key in a known namespace (hydrostream:, gcp:, docker:)" in message
    assert "3 problems" in message


def test_the_cli_s_whole_config_is_checked_as_pulumi_up_hands_it_over(tmp_path, monkeypatch):
    # `pulumi up` passes the stack's whole configuration in PULUMI_CONFIG (JSON): a key only there, in a
    # namespace nobody reads, is refused as well as one in the plan's config map.
    program = settings_program(tmp_path)
    monkeypatch.setenv("PULUMI_CONFIG", json.dumps({"hydrostrem:jobs": '{"rate": 10}'}))
    with pytest.raises(SettingsError, match=r"hydrostrem:jobs = .*`hydrostrem:` is none of them"):
        mocks.run_plan("dev", dict(GCP), program=program)


def test_every_source_pulumi_config_resolves_is_honoured(tmp_path, monkeypatch):
    # pulumi.Config also resolves PULUMI_CONFIG_<KEY> variables; a reader of the runtime's private
    # config map does not, which is why settings read through pulumi.Config.
    program = settings_program(tmp_path)
    monkeypatch.setenv("PULUMI_CONFIG_HYDROSTREAM_PROTECT", "true")
    assert mocks.run_plan("dev", dict(GCP), program=program).settings.protect is True


def test_backup_retentions_per_stack():
    expected = {"dev": (3, 3), "staging": (7, 7), "prod": (14, 30)}
    for stack, (snapshots, backups) in expected.items():
        settings = parse_settings(stack, mocks.stack_config(stack)).backups
        assert (settings.snapshot_retention_days, settings.influxdb_retention_days) == (snapshots, backups)


def test_prod_refuses_less_than_two_weeks_of_snapshots_or_backups_naming_each_key():
    prod = {key: value for key, value in mocks.stack_config("prod").items() if key != "hydrostream:backups"}
    message = error_for({**prod, "hydrostream:backups": {"snapshot_retention_days": 13,
                                                        "influxdb_retention_days": 7}}, stack="prod")
    assert "stack 'prod'" in message and "(2 problems)" in message
    assert "hydrostream:backups.snapshot_retention_days = 13: expected at least 14 days on prod" in message
    assert "hydrostream:backups.influxdb_retention_days = 7: expected at least 14 days on prod" in message
    # The defaults are dev's: a prod stack file without the section is refused too.
    assert "snapshot_retention_days = 3" in error_for(prod, stack="prod")
    edge = parse_settings("prod", {**prod, "hydrostream:backups": {"snapshot_retention_days": 14,
                                                                 "influxdb_retention_days": 14}})
    assert edge.backups.snapshot_retention_days == 14
    # Elsewhere a short retention is fine, but never zero.
    assert parse_settings("dev", {**GCP, "hydrostream:backups": {"snapshot_retention_days": 1}})
    never = error_for({**GCP, "hydrostream:backups": {"influxdb_retention_days": 0}})
    assert "hydrostream:backups.influxdb_retention_days = 0: expected an integer from 1 to 3650" in never


# --- Kafka brokers ------------------------------------------------------------------------------

def test_staging_and_prod_run_three_brokers_in_three_zones_dev_and_local_one():
    counts = {stack: parse_settings(stack, mocks.stack_config(stack)).kafka.brokers for stack in STACKS}
    assert counts == {"local": 1, "dev": 1, "staging": 3, "prod": 3}
    prod = parse_settings("prod", mocks.stack_config("prod"))
    # Broker 1 in the stack's zone, then the region's other zones.
    assert prod.broker_zones == ("europe-west1-d", "europe-west1-b", "europe-west1-c")
    assert (prod.kafka.replication_factor, prod.kafka.min_isr) == (3, 2)


def test_min_insync_replicas_defaults_to_one_for_one_broker_and_two_for_three():
    one = parse_settings("dev", GCP)
    assert (one.kafka.brokers, one.kafka.min_isr, one.broker_zones) == (1, 1, ("europe-west1-b",))
    three = parse_settings("dev", {**GCP, "hydrostream:kafka": {"brokers": 3}})
    assert three.kafka.min_isr == 2
    assert parse_settings("dev", {**GCP, "hydrostream:kafka": {"brokers": 3, "min_insync_replicas": 1}}
                          ).kafka.min_isr == 1


@pytest.mark.parametrize(("kafka", "message"), [
    ({"brokers": 2}, "hydrostream:kafka.brokers = 2: expected one of 1, 3"),
    ({"brokers": 3, "min_insync_replicas": 3},
     "hydrostream:kafka.min_insync_replicas = 3: expected an integer from 1 to 2"),
    ({"brokers": 1, "min_insync_replicas": 2},
     "hydrostream:kafka.min_insync_replicas = 2: expected 1 with one broker"),
])
def test_broker_counts_and_min_isr_the_brokers_cannot_meet_are_refused(kafka, message):
    assert message in error_for({**GCP, "hydrostream:kafka": kafka})


def test_min_isr_equal_to_the_brokers_is_refused_naming_why(monkeypatch):
    # With a wider range check, the cross-check still refuses min ISR == brokers.
    monkeypatch.setattr(settings_module, "BROKER_COUNTS", (1, 3, 5))
    message = error_for({**GCP, "hydrostream:kafka": {"brokers": 3, "min_insync_replicas": 3}})
    assert "hydrostream:kafka.min_insync_replicas = 3: expected fewer than the 3 brokers (1 to 2)" in message


def test_three_brokers_need_a_region_with_three_zones(monkeypatch):
    monkeypatch.setitem(settings_module.REGIONS, "asia-tiny1", ("asia-tiny1-a", "asia-tiny1-b"))
    config = {**GCP, "gcp:region": "asia-tiny1", "gcp:zone": "asia-tiny1-a",
              "hydrostream:kafka": {"brokers": 3}}
    message = error_for(config)
    assert ("hydrostream:kafka.brokers = 3: expected at most 2: 3 brokers go to 3 zones and region "
            "asia-tiny1 has 2 (asia-tiny1-a, asia-tiny1-b)") in message
    one = parse_settings("dev", {**config, "hydrostream:kafka": {"brokers": 1}})
    assert one.broker_zones == ("asia-tiny1-a",)


def test_the_local_stack_stays_one_broker():
    message = error_for({"hydrostream:kafka": {"brokers": 3}}, stack="local")
    assert "hydrostream:kafka.brokers = 3: expected 1: the local stack runs one broker container" in message


def test_a_window_shorter_than_its_slide_is_refused():
    # Spark's window() refuses it at the consumer's start (an AnalysisException after a 15-minute deploy).
    message = error_for({**GCP, "hydrostream:jobs": {"window": "1m", "slide": "5m"}})
    assert "hydrostream:jobs.window = '1m': expected at least the slide (5m)" in message
    tumbling = {"window": "5m", "slide": "5m"}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": tumbling}).jobs.slide == "5m"


@pytest.mark.parametrize(("window", "slide", "copies", "least"),
                         [("24h", "1s", "86,400", "24m"), ("1h", "59s", "61", "1m"),
                          ("61s", "1s", "61", "1017ms")])
def test_more_windows_per_reading_than_the_bound_are_refused(window, slide, copies, least):
    message = error_for({**GCP, "hydrostream:jobs": {"window": window, "slide": slide}})
    assert f"hydrostream:jobs.slide = '{slide}': expected at least {least} with a {window} window" in message
    assert f"window / slide windows ({copies} here), at most 60" in message
    # An hour slid by the minute is the most: exactly 60 copies of each reading.
    hourly = {"window": "1h", "slide": "1m"}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": hourly}).jobs.window == "1h"


def test_a_read_cap_the_rate_outruns_is_refused_and_the_default_keeps_up():
    # 500/s x 30 s = 15,000 readings a trigger; the cap must hold twice that.
    message = error_for({**GCP, "hydrostream:jobs": {"max_offsets_per_trigger": 10}})
    assert "hydrostream:jobs.max_offsets_per_trigger = 10: expected at least 30,000" in message
    # (with a catch-up slow enough for it: an hour's backlog in two, 500 x 1.5 x 30 = 22,500 a trigger)
    exact = {"max_offsets_per_trigger": 30_000, "catch_up_within": "2h"}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": exact}).jobs.read_cap == 30_000
    # Unset: 100,000, or what a faster rate needs to catch up: by default an hour's backlog in 15 minutes,
    # so 2,000/s + 2,000 x 3,600 / 900 = 10,000 readings/s while behind, 600,000 per minute's trigger.
    assert parse_settings("dev", dict(GCP)).jobs.read_cap == 100_000
    fast = {"rate": 2000, "trigger": "1m"}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": fast}).jobs.read_cap == 600_000
    # available-now reads what is there, a cap only splits it into batches.
    once = {"trigger": "available-now", "max_offsets_per_trigger": 10}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": once}).jobs.read_cap == 10


def test_a_read_cap_that_misses_the_catch_up_target_is_refused_naming_both_keys():
    # 500/s, an hour's backlog (1,800,000 readings) within 20 minutes: 500 + 1,500 = 2,000 readings/s
    # while behind, 60,000 per 30 s trigger.
    jobs = {"catch_up_within": "20m", "max_offsets_per_trigger": 59_999}
    message = error_for({**GCP, "hydrostream:jobs": jobs})
    assert "hydrostream:jobs.max_offsets_per_trigger = 59999: expected at least 60,000 to work off a 1h " \
           "outage's backlog within 20m (hydrostream:jobs.catch_up_outage, " \
           "hydrostream:jobs.catch_up_within)" in message
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": {**jobs, "max_offsets_per_trigger": 60_000}})


def test_a_catch_up_the_executors_cannot_meet_is_refused_naming_the_sizes():
    # A pinned master and 2 x e2-standard-4: 2 consumer executors x 2 cores x 4,000 = 16,000 readings/s
    # (the rate may be 8,000). At 4,000/s an hour's backlog within 15 minutes needs 4,000 x (1 + 4) =
    # 20,000 readings/s; within 30 minutes, 4,000 x (1 + 2) = 12,000.
    pinned = {"hydrostream:dataproc": {"master": "e2-standard-4", "worker": "e2-standard-4", "workers": 2}}
    message = error_for({**GCP, **pinned, "hydrostream:jobs": {"rate": 4_000}})
    assert "hydrostream:jobs.catch_up_within = '15m': expected a time the consumer can meet: a 1h outage's " \
           "backlog within 15m needs 20,000 readings/s, and its executors process 16,000/s" in message
    assert "hydrostream:dataproc.worker or hydrostream:dataproc.workers" in message
    slower = {"rate": 4_000, "catch_up_within": "30m"}
    assert parse_settings("dev", {**GCP, **pinned, "hydrostream:jobs": slower}).jobs.read_cap == 12_000 * 30


@pytest.mark.parametrize(("jobs", "key", "allowed"), [
    ({"catch_up_outage": "73h"}, "catch_up_outage", "at most hydrostream:kafka.retention_hours (72h)"),
    ({"catch_up_within": "35s"}, "catch_up_within",
     "at least a hundredth of hydrostream:jobs.catch_up_outage"),
])
def test_an_outage_beyond_retention_or_a_catch_up_too_fast_is_refused(jobs, key, allowed):
    message = error_for({**GCP, "hydrostream:jobs": jobs})
    assert f"hydrostream:jobs.{key} = '{jobs[key]}': expected {allowed}" in message
    # The edges are accepted: the whole retention, and a hundredth of the outage.
    kept = {"catch_up_outage": "72h", "catch_up_within": "1d"}
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": kept}).jobs.catch_up_outage == "72h"
    assert parse_settings("dev", {**GCP, "hydrostream:jobs": {"catch_up_within": "36s"}})


@pytest.mark.parametrize("ranges", [["0.0.0.0/1", "128.0.0.0/1"], ["8.0.0.0/8"],
                                    [f"203.{i}.0.0/16" for i in range(2)]])
def test_grafana_ranges_that_together_cover_much_of_the_internet_are_refused(ranges):
    message = error_for({**GCP, "hydrostream:network": {"grafana_source_ranges": ranges}})
    assert f"hydrostream:network.grafana_source_ranges = {ranges!r}: expected ranges that together cover " \
           f"at most 65,536 public addresses" in message


def test_grafana_ranges_count_only_public_addresses():
    # A /16 of public addresses is the most; private and CGNAT ranges are not the internet.
    ranges = ["203.0.0.0/16", "10.0.0.0/8", "100.64.0.0/10", "192.168.1.0/24"]
    network = parse_settings("dev", {**GCP, "hydrostream:network": {"grafana_source_ranges": ranges}}).network
    assert network.grafana_source_ranges == tuple(ranges)


def test_a_dev_only_key_is_refused_on_other_stacks():
    for stack in ("staging", "prod"):
        config = {**mocks.stack_config(stack), "hydrostream:dataproc": {
            **mocks.stack_config(stack).get("hydrostream:dataproc", {}), "idle_delete_minutes": 120}}
        message = error_for(config, stack=stack)
        assert f"hydrostream:dataproc.idle_delete_minutes = 120: expected unset on {stack}: it is for dev " \
               f"only" in message
    assert parse_settings("dev", mocks.stack_config("dev")).dataproc.idle_delete_minutes == 120


@pytest.mark.parametrize("key", ["window", "slide", "watermark", "trigger"])
def test_zero_durations_are_refused_as_not_positive(key):
    message = error_for({**GCP, "hydrostream:jobs": {key: "0s"}})
    assert f"hydrostream:jobs.{key} = '0s': expected a positive duration" in message


def test_keys_of_the_other_target_s_provider_or_sections_are_refused():
    message = error_for({**GCP, "docker:host": "unix:///run/docker.sock", "hydrostream:local": {}})
    assert "docker:host = 'unix:///run/docker.sock': expected no docker: keys on the gcp target" in message
    assert "hydrostream:local = {}: expected no `local` section on the gcp target" in message
    local = parse_settings("local", {"hydrostream:target": "local", "docker:host": "unix:///run/docker.sock"})
    assert local.target == "local"
    assert "no gcp: keys on the local target" in error_for({"gcp:project": "p"}, stack="local")


def test_a_refused_value_is_not_replaced_by_its_default_in_the_checks_across_keys():
    # window '0s' is refused; its default (5m) must not then be reported shorter than the slide.
    message = error_for({**GCP, "hydrostream:jobs": {"window": "0s", "slide": "10m"}})
    assert "1 problem)" in message and "'5m'" not in message


def test_a_pinned_cluster_must_carry_the_load_with_its_spare_workers_lost():
    # prod (2,000/s; 10,000 readings/s while behind) pinned to 4 x e2-standard-2 (6,144 MB of YARN, one
    # 2-core executor each, none beside both AMs): 3 executors guaranteed, 2 for the consumer, 16,000/s
    # with all four; with one lost, 3 workers guarantee 2 (0 + 1 + 1), 1 for the consumer: 8,000/s.
    pinned = {"master": "e2-highmem-2", "worker": "e2-standard-2", "workers": 4}
    config = {**mocks.stack_config("prod"), "hydrostream:dataproc": {**pinned, "spare_workers": 1}}
    message = error_for(config, stack="prod")
    assert "needs 10,000 readings/s, and its executors process 8,000/s" in message
    # Without the spare worker the same cluster is accepted; with five workers, one lost leaves 16,000/s.
    assert parse_settings("prod", {**config, "hydrostream:dataproc": pinned})
    five = {**pinned, "workers": 5, "spare_workers": 1}
    assert parse_settings("prod", {**config, "hydrostream:dataproc": five})


def test_spare_workers_whose_loss_leaves_no_am_share_are_refused():
    # 2 pinned workers, both spare: no worker left to start an AM on.
    pinned = {"master": "e2-highmem-2", "worker": "n2-standard-8", "workers": 2, "spare_workers": 2}
    message = error_for({**GCP, "hydrostream:dataproc": pinned})
    assert "hydrostream:dataproc = '2 x n2-standard-8': expected 0 worker(s) of 26112 MB of YARN memory " \
           "let the application masters hold 0 MB" in message
