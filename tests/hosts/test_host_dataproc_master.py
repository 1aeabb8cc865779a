"""Dataproc master (GCP), where both job drivers run, or the local Spark container.

Dataproc's own daemons (YARN, HDFS, the agent) listen on many ports the image decides: on the
master this suite asserts the jobs' metrics ports listen rather than an exhaustive port list; the
other roles' suites assert those ports listen nowhere else.
"""

from __future__ import annotations

from host_checks import (
    check_containers_running_and_healthy,
    check_data_disk_mounted,
    check_no_secret_in_world_readable_files,
    check_ports_listening_only_where_expected,
    check_restarts_after_reboot,
    exposed_ports,
)
from hydrostream_jobs import contract
from inventory import DATAPROC_MASTER

ROLE = DATAPROC_MASTER
METRICS_PORTS = {contract.PRODUCER_METRICS_PORT, contract.CONSUMER_METRICS_PORT}
DATAPROC_AGENT = "google-dataproc-agent"
SEARCH_DIRS = ("/etc/hydrostream", "/home", "/tmp", "/var/tmp")


def test_containers_running_and_healthy(role):
    if role.on_gcp:
        agent = role.node.service(DATAPROC_AGENT)
        assert agent.is_running, f"{DATAPROC_AGENT} is not running: jobs cannot be driven"
        drivers = role.node.run("pgrep -af 'consumer.py|producer.py'")
        assert "consumer.py" in drivers.stdout and "producer.py" in drivers.stdout, drivers.stdout
    else:
        check_containers_running_and_healthy(role)


def test_ports_listening_only_where_expected(role):
    if role.on_gcp:
        assert exposed_ports(role.node) >= METRICS_PORTS
    else:
        check_ports_listening_only_where_expected(role)


def test_data_disk_mounted(role):
    if role.on_gcp:
        assert role.node.mount_point("/").exists
        hdfs = role.node.file("/hadoop/dfs")
        assert hdfs.is_directory, "no HDFS data directory on the master"
    else:
        check_data_disk_mounted(role)


def test_services_restart_after_reboot(role):
    if role.on_gcp:
        assert role.node.service(DATAPROC_AGENT).is_enabled
    else:
        check_restarts_after_reboot(role)


def test_no_secret_in_world_readable_files(role):
    if role.on_gcp:
        commands = role.node.run("ps -eo args")
        assert "--influx-token " not in commands.stdout, "a token on a command line"
        loose = role.node.run(f"find {' '.join(SEARCH_DIRS)} -xdev -type f -iname '*token*' -perm -o=r "
                              "2>/dev/null")
        assert loose.stdout.strip() == "", loose.stdout
    else:
        check_no_secret_in_world_readable_files(role, SEARCH_DIRS)
        args = " ".join(role.inspect(role.services()[0])["Args"] or [])
        assert "--influx-token " not in args
