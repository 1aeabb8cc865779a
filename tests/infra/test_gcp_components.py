"""The GCP network, firewall, identity, storage and secrets components, checked value by value.

Expected values are written out by hand here (ports, roles, who reads which secret), then compared
with what the real program registers under mocks, so a change on either side shows up.
"""

from __future__ import annotations

import re

import pytest
import yaml
from hydrostream_jobs import contract

from infra import catalog, model, roles
from infra.gcp import firewall, monitoring, secrets
from infra.settings import parse_settings
from infra.tools import mocks
from tests.infra.conftest import roles_by_account

ACCOUNT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
DEV = "hydrostream-dev"


def member(role: str, project: str = DEV) -> str:
    return f"serviceAccount:hydro-{role}@{project}.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def dev(plans) -> mocks.Plan:
    return plans["dev"]


@pytest.fixture(scope="module")
def prod(plans) -> mocks.Plan:
    return plans["prod"]


# --- network -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("stack", "cidr"), [("dev", "10.20.0.0/24"), ("staging", "10.30.0.0/24"),
                                             ("prod", "10.40.0.0/24")])
def test_one_custom_subnet_with_private_google_access_behind_nat(plans, stack, cidr):
    p = plans[stack]
    [vpc] = p.of_type("gcp:compute/network:Network")
    [subnet] = p.of_type("gcp:compute/subnetwork:Subnetwork")
    [router] = p.of_type("gcp:compute/router:Router")
    [nat] = p.of_type("gcp:compute/routerNat:RouterNat")
    assert vpc.inputs["autoCreateSubnetworks"] is False
    assert subnet.inputs["ipCidrRange"] == cidr
    assert subnet.inputs["privateIpGoogleAccess"] is True
    assert subnet.inputs["region"] == router.inputs["region"] == nat.inputs["region"] == "europe-west1"
    assert subnet.inputs["network"] == router.inputs["network"] == "network-vpc-id"
    assert nat.inputs["router"] == router.inputs["name"]
    assert nat.inputs["natIpAllocateOption"] == "AUTO_ONLY"
    assert nat.inputs["sourceSubnetworkIpRangesToNat"] == "LIST_OF_SUBNETWORKS"
    assert nat.inputs["subnetworks"] == [
        {"name": "network-subnet-id", "sourceIpRangesToNats": ["ALL_IP_RANGES"]}]


# --- firewall ----------------------------------------------------------------------------------

def reachable(p: mocks.Plan) -> set[tuple[str, str, str, str]]:
    """(source role or range, target role, protocol, port or 'all') for every allow of every planned ingress
    rule (the egress rules are listed in test_gcp_egress.py). A rule selects instances by service account:
    each account reads back as its role through the plan's own role -> account mapping."""
    role_of = roles_by_account(p)
    found = set()
    rules = p.of_type("gcp:compute/firewall:Firewall")
    assert {rule.inputs["direction"] for rule in rules} == {"INGRESS", "EGRESS"}
    for rule in rules:
        if rule.inputs["direction"] == "EGRESS":
            continue
        sources = ([role_of[a] for a in rule.inputs.get("sourceServiceAccounts", [])]
                   + rule.inputs.get("sourceRanges", []))
        targets = [role_of[a] for a in rule.inputs["targetServiceAccounts"]]
        for allow in rule.inputs["allows"]:
            for port in allow.get("ports") or ["all"]:
                for source in sources:
                    for target in targets:
                        found.add((source, target, allow["protocol"], port))
    return found


IAP = "35.235.240.0/20"
EXPECTED_FLOWS = {
    ("dataproc", "broker", "tcp", "9092"),
    ("dataproc", "tsdb", "tcp", "8086"),
    ("monitoring", "tsdb", "tcp", "8086"),
    ("monitoring", "dataproc", "tcp", "8000"),
    ("monitoring", "dataproc", "tcp", "8001"),
    ("monitoring", "broker", "tcp", "9404"),
    ("monitoring", "broker", "tcp", "9100"),
    ("monitoring", "tsdb", "tcp", "9100"),
    ("monitoring", "monitoring", "tcp", "9100"),
    ("dataproc", "dataproc", "tcp", "all"),
    ("dataproc", "dataproc", "udp", "all"),
    ("dataproc", "dataproc", "icmp", "all"),
    (IAP, "broker", "tcp", "22"),
    (IAP, "tsdb", "tcp", "22"),
    (IAP, "monitoring", "tcp", "22"),
    (IAP, "dataproc", "tcp", "22"),
}


def test_the_planned_rules_admit_exactly_the_expected_flows(dev):
    assert reachable(dev) == EXPECTED_FLOWS


def test_flow_ports_are_the_catalog_and_contract_ports(plans):
    assert firewall.IAP_RANGE == IAP
    assert (contract.PRODUCER_METRICS_PORT, contract.CONSUMER_METRICS_PORT) == (8000, 8001)
    assert catalog.KAFKA.port("kafka") == 9092 and catalog.INFLUXDB.port("http") == 8086
    assert catalog.KAFKA.port("metrics") == 9404 and catalog.NODE_EXPORTER.port("metrics") == 9100
    assert catalog.GRAFANA.port("http") == 3000
    # Every exporter Prometheus scrapes on another VM is admitted from the monitoring account.
    flows = reachable(plans["staging"])
    for service in catalog.SERVICES.values():
        for port in service.ports:
            if port.name == "metrics" or service is catalog.SPARK:
                roles = catalog.ROLES if service.role == catalog.EVERY_VM else (service.role,)
                for role in roles:
                    assert ("monitoring", role, "tcp", str(port.number)) in flows, (service.name, role)


# Who the monitoring VM's Prometheus scrapes, written out by hand: (job, role of the host, port). The
# services beside it (itself, Alertmanager, Grafana, its own node-exporter) on localhost, through no rule.
SCRAPES = {
    ("hydro-producer", "dataproc", 8000), ("hydro-consumer", "dataproc", 8001),
    ("kafka", "broker", 9404),
    ("node-exporter", "broker", 9100), ("node-exporter", "tsdb", 9100), ("node-exporter", "localhost", 9100),
    ("influxdb", "tsdb", 8086),
    ("prometheus", "localhost", 9090), ("alertmanager", "localhost", 9093), ("grafana", "localhost", 3000),
}


def test_every_scrape_of_another_vm_is_an_admitted_flow_and_nothing_more_is_opened_for_them(dev):
    hosts = {"10.20.0.5": "broker", "10.20.0.6": "tsdb", "hydro-dev-dataproc-m": "dataproc",
             monitoring.THIS_HOST: "localhost"}
    settings = parse_settings("dev", mocks.stack_config("dev"))
    files = monitoring.config_files("dev", "hydro", "hydro", settings.alerting, model.alert_rules(settings),
                                    kafka_ips=["10.20.0.5"], influxdb_ip="10.20.0.6",
                                    dataproc_master="hydro-dev-dataproc-m")
    config = yaml.safe_load(files["prometheus-config/prometheus.yml"])
    scraped = {(job["job_name"], hosts[target.rsplit(":", 1)[0]], int(target.rsplit(":", 1)[1]))
               for job in config["scrape_configs"] for static in job["static_configs"]
               for target in static["targets"]}
    assert scraped == SCRAPES
    needed = {("monitoring", role, "tcp", str(port)) for _, role, port in scraped if role != "localhost"}
    from_monitoring = {flow for flow in reachable(dev) if flow[0] == "monitoring"}
    # Beyond the scrapes: node-exporter's flow names every service VM's role, the monitoring VM's own
    # included (scraped on localhost here). Grafana's InfluxDB data source uses InfluxDB's scraped port.
    assert from_monitoring - needed == {("monitoring", "monitoring", "tcp", "9100")}
    assert needed <= from_monitoring
    local_ports = {port for service in catalog.services_for_role(catalog.MONITORING) for port in
                   (p.number for p in service.ports)}
    assert {port for _, role, port in scraped if role == "localhost"} <= local_ports


def test_grafana_is_reachable_directly_only_from_configured_ranges():
    config = {**mocks.stack_config("dev"),
              "hydrostream:network": {"grafana_source_ranges": ["198.51.100.0/24", "203.0.113.7/32"]}}
    with_viewers = reachable(mocks.run_plan("dev", config))
    assert with_viewers - EXPECTED_FLOWS == {("198.51.100.0/24", "monitoring", "tcp", "3000"),
                                             ("203.0.113.7/32", "monitoring", "tcp", "3000")}
    assert not any(port == "3000" for *_, port in EXPECTED_FLOWS)


ALL_ROLES = ("broker", "tsdb", "monitoring", "dataproc")


@pytest.mark.parametrize("stack", ("dev", "prod"))
def test_the_plans_role_accounts_are_the_roles_own(plans, stack):
    # What reachable() and the egress listing read accounts back through, checked against the hand form.
    project = plans[stack].settings.gcp.project
    mapping = plans[stack].outputs["service_accounts"]
    assert {role: mapping[role] for role in ALL_ROLES} == {
        role: member(role, project).removeprefix("serviceAccount:") for role in ALL_ROLES}


def test_every_account_a_rule_names_runs_a_vm_or_the_cluster_and_nothing_carries_a_tag(dev):
    vms = dev.of_type("gcp:compute/instance:Instance")
    [cluster] = dev.of_type("gcp:dataproc/cluster:Cluster")
    gce = cluster.inputs["clusterConfig"]["gceClusterConfig"]
    running = {vm.inputs["serviceAccount"]["email"] for vm in vms} | {gce["serviceAccount"]}
    assert running == {member(role).removeprefix("serviceAccount:") for role in ALL_ROLES}
    named = {account for rule in dev.of_type("gcp:compute/firewall:Firewall")
             for field in ("sourceServiceAccounts", "targetServiceAccounts")
             for account in rule.inputs.get(field) or []}
    assert named == running
    assert not any("tags" in vm.inputs for vm in vms) and "tags" not in gce


def test_a_flow_naming_a_role_without_an_account_is_refused():
    emails = {role: f"hydro-{role}@p.iam.gserviceaccount.com" for role in ("broker", "dataproc")}
    kafka = firewall.Flow("kafka-from-dataproc", target_roles=("broker",), ports=(9092,),
                          source_roles=("dataproc",))
    assert firewall.service_accounts(emails, kafka.source_roles, kafka.name) == [emails["dataproc"]]
    orphan = firewall.Flow("influxdb-from-dataproc", target_roles=("tsdb",), ports=(8086,),
                           source_roles=("dataproc",))
    with pytest.raises(ValueError, match=r"flow influxdb-from-dataproc: no service account for role tsdb "):
        mocks.run_components("dev", lambda model: {"rules": firewall.FirewallRules(
            "firewall", firewall.FirewallRulesArgs("vpc", (kafka, orphan), emails)).rule_names})
    outbound = firewall.EgressFlow("apis", ("monitoring",), firewall.GOOGLE_APIS, (443,), ("apis",))
    with pytest.raises(ValueError, match=r"flow apis: no service account for role monitoring"):
        mocks.run_components("dev", lambda model: {"rules": firewall.EgressRules(
            "egress", firewall.EgressRulesArgs("vpc", (outbound,), emails)).rule_names})
    eleven = {f"role{n}": f"hydro-role{n}@p.iam.gserviceaccount.com" for n in range(11)}
    with pytest.raises(ValueError, match="flow wide: 11 roles, a rule takes at most 10 service accounts"):
        firewall.service_accounts(eleven, tuple(eleven), "wide")


def test_rule_names_fit_gcp_limits(dev):
    for rule in dev.of_type("gcp:compute/firewall:Firewall"):
        assert re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", rule.inputs["name"]), rule.inputs["name"]


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"source_roles": ("dataproc",), "source_range": firewall.IAP_FORWARDERS}, "exactly one"),
    ({}, "exactly one"),
    ({"source_range": firewall.SourceRange("nobody", ())}, "holds no CIDR"),
    ({"source_roles": ("dataproc",), "protocols": ("icmp",)}, "ports apply only to tcp, udp"),
])
def test_a_malformed_flow_is_refused(kwargs, message):
    with pytest.raises(ValueError, match=message):
        firewall.Flow("bad", target_roles=("broker",), ports=(9092,), **kwargs)


def test_a_flow_needs_a_target():
    with pytest.raises(ValueError, match="no target role"):
        firewall.Flow("bad", target_roles=(), ports=(9092,), source_roles=("dataproc",))


# --- identity ----------------------------------------------------------------------------------

def test_each_account_holds_only_its_project_roles(dev):
    accounts = {r.inputs["accountId"] for r in dev.of_type("gcp:serviceaccount/account:Account")}
    assert accounts == {"hydro-dataproc", "hydro-broker", "hydro-tsdb", "hydro-monitoring",
                        "hydro-tsdb-backup"}
    assert all(ACCOUNT_ID.fullmatch(a) for a in accounts)
    grants = dev.of_type("gcp:projects/iAMMember:IAMMember")
    granted = {(g.inputs["member"], g.inputs["role"]) for g in grants}
    base = {"roles/logging.logWriter", "roles/monitoring.metricWriter"}
    expected = {(member(role), r) for role in ("dataproc", "broker", "tsdb", "monitoring") for r in base}
    # Dataproc's agent and task permissions come in a custom role, not roles/dataproc.worker.
    expected.add((member("dataproc"), f"projects/{DEV}/roles/hydrostreamDataprocNode"))
    assert granted == expected
    assert {g.inputs["project"] for g in grants} == {DEV}
    # The backup account holds no project role; only the InfluxDB VM's account may mint its tokens.
    (borrow,) = dev.of_type("gcp:serviceaccount/iAMMember:IAMMember")
    assert borrow.inputs == {
        "serviceAccountId": f"projects/{DEV}/serviceAccounts/hydro-tsdb-backup@{DEV}.iam.gserviceaccount.com",
        "role": f"projects/{DEV}/roles/hydrostreamAccessTokenMinter", "member": member("tsdb")}
    custom = {r.inputs["roleId"]: r.inputs["permissions"] for r in dev.of_type(
        "gcp:projects/iAMCustomRole:IAMCustomRole")}
    assert custom["hydrostreamAccessTokenMinter"] == ["iam.serviceAccounts.getAccessToken"]
    assert not [p for p in custom["hydrostreamDataprocNode"] if p.startswith("storage.objects.")]


def test_project_roles_follow_the_role_table():
    assert roles.DATAPROC.all_project_roles == ("roles/logging.logWriter", "roles/monitoring.metricWriter")
    assert roles.DATAPROC.custom_roles == (roles.DATAPROC_NODE,)
    assert roles.MONITORING.all_project_roles == ("roles/logging.logWriter", "roles/monitoring.metricWriter")
    # Borrowed for uploads only: no project role, not even the base ones.
    assert roles.TSDB_BACKUP.all_project_roles == ()
    assert {r.name for r in roles.ACCOUNTS} == {*catalog.ROLES, catalog.DATAPROC, "tsdb-backup"}
    assert [r.account_id for r in roles.ACCOUNTS] == [
        "hydro-dataproc", "hydro-broker", "hydro-tsdb", "hydro-monitoring", "hydro-tsdb-backup"]


# --- storage -----------------------------------------------------------------------------------

def buckets(p: mocks.Plan) -> dict[str, dict]:
    return {r.inputs["labels"]["purpose"]: r.inputs for r in p.of_type("gcp:storage/bucket:Bucket")}


def test_buckets_are_regional_private_and_named_after_project_and_purpose(dev, prod):
    for p, project in ((dev, DEV), (prod, "hydrostream-prod")):
        planned = buckets(p)
        assert set(planned) == {"dataproc-staging", "dataproc-temp", "artifacts", "checkpoints", "config",
                                "influxdb-backups", "broker-agents"}
        for purpose, inputs in planned.items():
            assert inputs["name"] == f"{project}-{purpose}" and len(inputs["name"]) <= 63
            assert inputs["location"] == "europe-west1"
            assert inputs["uniformBucketLevelAccess"] is True
            assert inputs["publicAccessPrevention"] == "enforced"
    assert {purpose: i["forceDestroy"] for purpose, i in buckets(dev).items()} == dict.fromkeys(
        roles.Bucket, True)
    assert {purpose: i["forceDestroy"] for purpose, i in buckets(prod).items()} == dict.fromkeys(
        roles.Bucket, False)
    assert all(r.protect for r in prod.of_type("gcp:storage/bucket:Bucket"))
    assert not any(r.protect for r in dev.of_type("gcp:storage/bucket:Bucket"))


def test_temp_objects_expire_artifacts_are_versioned_and_backups_retained(dev):
    planned = buckets(dev)
    assert planned["dataproc-temp"]["lifecycleRules"] == [
        {"action": {"type": "Delete"}, "condition": {"age": 90}}]
    assert planned["artifacts"]["versioning"] == {"enabled": True}
    assert planned["artifacts"]["lifecycleRules"] == [
        {"action": {"type": "Delete"}, "condition": {"daysSinceNoncurrentTime": 30}}]
    # A retention policy instead of versioning (Cloud Storage refuses both on one bucket): 3 days on dev.
    assert planned["influxdb-backups"]["versioning"] == {"enabled": False}
    assert planned["influxdb-backups"]["retentionPolicy"] == {"retentionPeriod": "259200", "isLocked": False}
    assert planned["influxdb-backups"]["lifecycleRules"] == [
        {"action": {"type": "Delete"}, "condition": {"age": 3}},
        {"action": {"type": "Delete"}, "condition": {"daysSinceNoncurrentTime": 7}}]
    for purpose in ("dataproc-staging", "checkpoints", "config", "broker-agents"):
        assert not {"lifecycleRules", "versioning", "retentionPolicy"} & set(planned[purpose])


def test_bucket_grants_are_per_bucket_and_minimal(dev):
    granted = {(g.inputs["bucket"], g.inputs["role"], g.inputs["member"])
               for g in dev.of_type("gcp:storage/bucketIAMMember:BucketIAMMember")}
    admin, viewer = "roles/storage.objectAdmin", "roles/storage.objectViewer"
    backup = f"serviceAccount:hydro-tsdb-backup@{DEV}.iam.gserviceaccount.com"
    assert granted == {
        (f"{DEV}-dataproc-staging", admin, member("dataproc")),
        (f"{DEV}-dataproc-temp", admin, member("dataproc")),
        (f"{DEV}-checkpoints", admin, member("dataproc")),
        (f"{DEV}-artifacts", viewer, member("dataproc")),
        (f"{DEV}-config", viewer, member("monitoring")),
        (f"{DEV}-influxdb-backups", "roles/storage.objectCreator", backup),
        (f"{DEV}-broker-agents", viewer, member("broker")),
    }


def test_stack_outputs_name_the_buckets(dev):
    assert dev.outputs["buckets"] == {purpose: f"{DEV}-{purpose}" for purpose in roles.Bucket}


# --- secrets -----------------------------------------------------------------------------------

def test_each_secret_is_readable_exactly_by_the_accounts_that_use_it(dev):
    readers: dict[str, set[str]] = {}
    adders: dict[str, set[str]] = {}
    for grant in dev.of_type("gcp:secretmanager/secretIamMember:SecretIamMember"):
        assert grant.inputs["project"] == DEV
        granted = {"roles/secretmanager.secretAccessor": readers,
                   "roles/secretmanager.secretVersionAdder": adders}[grant.inputs["role"]]
        granted.setdefault(grant.inputs["secretId"], set()).add(grant.inputs["member"])
    assert readers == {
        "hydrostream-influxdb-admin-password": {member("tsdb")},
        # The operator token never leaves the InfluxDB VM; each client reads its own scoped token.
        "hydrostream-influxdb-token": {member("tsdb")},
        "hydrostream-grafana-admin-password": {member("monitoring")},
        "hydrostream-influxdb-write-token": {member("dataproc")},
        "hydrostream-influxdb-read-token": {member("monitoring")},
        # The broker sets every Kafka user's credential; each job reads only its own user's password.
        "hydrostream-kafka-password-hydro-admin": {member("broker")},
        "hydrostream-kafka-password-hydro-producer": {member("broker"), member("dataproc")},
        "hydrostream-kafka-password-hydro-consumer": {member("broker"), member("dataproc")},
    }
    # The InfluxDB VM creates the scoped tokens and may add them, nothing more.
    assert adders == {"hydrostream-influxdb-write-token": {member("tsdb")},
                      "hydrostream-influxdb-read-token": {member("tsdb")}}


def test_secrets_are_generated_stored_once_and_replicated_automatically(dev):
    stored = dev.of_type("gcp:secretmanager/secret:Secret")
    # dev configures no alert receiver: none of their secrets exists (tests/infra/test_alert_receivers.py).
    dev_secrets = [n for n in catalog.SECRETS if n not in catalog.RECEIVER_SECRETS]
    assert {s.inputs["secretId"] for s in stored} == {f"hydrostream-{n}" for n in dev_secrets}
    for secret in stored:
        assert secret.inputs["replication"] == {"auto": {}}
        assert secret.inputs["labels"] == {"app": "hydrostream", "env": "dev"}
    versions = dev.of_type("gcp:secretmanager/secretVersion:SecretVersion")
    # The scoped tokens get their versions from the InfluxDB VM, not from Pulumi.
    assert {v.inputs["secret"] for v in versions} == {
        f"secrets-{n}-id" for n in (catalog.INFLUXDB_ADMIN_PASSWORD, catalog.INFLUXDB_TOKEN,
                                    catalog.GRAFANA_ADMIN_PASSWORD, "kafka-password-hydro-admin",
                                    "kafka-password-hydro-producer", "kafka-password-hydro-consumer")}
    assert all(v.secret_paths == {"secretData"} for v in versions)
    generated = {r.name: r.inputs for r in dev.of_type("random:index/randomPassword:RandomPassword")}
    assert {name: (i["length"], i["special"]) for name, i in generated.items()} == {
        "secrets-influxdb-admin-password": (32, False),
        "secrets-influxdb-token": (64, False),
        "secrets-grafana-admin-password": (32, False),
        "secrets-kafka-password-hydro-admin": (32, False),
        "secrets-kafka-password-hydro-producer": (32, False),
        "secrets-kafka-password-hydro-consumer": (32, False),
    }


def test_secret_ids_are_exported_values_are_not(dev):
    assert dev.outputs["secret_ids"] == {
        n: f"projects/{DEV}/secrets/hydrostream-{n}" for n in catalog.SECRETS
        if n not in catalog.RECEIVER_SECRETS}
    assert secrets.secret_id(catalog.INFLUXDB_TOKEN) == "hydrostream-influxdb-token"


def fake_emails() -> dict[str, str]:
    return {role.name: f"fake-{role.name}@fake.iam.gserviceaccount.com" for role in roles.ACCOUNTS}


def test_secret_values_are_secret_outputs():
    def declare(model):
        built = secrets.Secrets("secrets", secrets.SecretsArgs(
            model.gcp.project, model.labels, False, roles.ACCOUNTS, fake_emails(), receiver_values={}))
        return {"values": built.values, "ids": built.ids}

    p = mocks.run_components("dev", declare)
    assert "values" in p.secret_outputs and "ids" not in p.secret_outputs
    assert p.outputs["values"] == {n: f"mock-secrets-{n}-value" for n in catalog.GENERATED_SECRETS}
    # No receiver configured, no receiver secret.
    assert sorted(p.outputs["ids"]) == sorted(
        n for n in catalog.SECRETS if n not in catalog.RECEIVER_SECRETS)
    token_id = p.outputs["ids"][catalog.INFLUXDB_TOKEN]
    assert token_id == f"projects/{DEV}/secrets/hydrostream-influxdb-token"


def test_receiver_values_for_an_unknown_secret_are_refused():
    with pytest.raises(ValueError, match=r"receiver values given for \['influxdb-token'\]"):
        secrets.SecretsArgs("fake-project", {}, False, roles.ACCOUNTS, fake_emails(),
                            receiver_values={catalog.INFLUXDB_TOKEN: "x"})


def test_prod_protects_every_secret_and_its_value(prod):
    stored = prod.of_type("gcp:secretmanager/secret:Secret")
    assert [r.protect for r in stored] == [True] * len(catalog.SECRETS)
    generated = {f"secrets-{n}" for n in catalog.GENERATED_SECRETS}
    for kind in ("gcp:secretmanager/secretVersion:SecretVersion",
                 "random:index/randomPassword:RandomPassword"):
        kept = [r.name for r in prod.of_type(kind) if r.protect]
        assert sorted(kept) == sorted(generated), kind
    # The operator's receiver values are replaced when rotated: their versions are not protected.
    receivers = [r for r in prod.of_type("gcp:secretmanager/secretVersion:SecretVersion")
                 if r.name not in generated]
    assert sorted(r.name for r in receivers) == sorted(f"secrets-{n}" for n in catalog.RECEIVER_SECRETS)
    assert not any(r.protect for r in receivers)
    stored = prod.of_type("gcp:secretmanager/secret:Secret")
    assert [s.inputs["deletionProtection"] for s in stored] == [True] * len(catalog.SECRETS)


# --- stack outputs -----------------------------------------------------------------------------

def test_outputs_give_operators_and_host_checks_what_they_need(dev):
    out = dev.outputs
    assert (out["project"], out["zone"]) == (DEV, "europe-west1-b")
    assert out["instances"] == {"broker": "hydrostream-dev-broker", "tsdb": "hydrostream-dev-tsdb",
                                "monitoring": "hydrostream-dev-monitoring",
                                "dataproc_master": "hydrostream-dev-m"}
    assert re.fullmatch(r"10(\.[0-9]+){3}:9092", out["kafka_bootstrap_servers"])
    assert re.fullmatch(r"http://10(\.[0-9]+){3}:8086", out["influxdb_url"])
    assert out["grafana_iap_command"].startswith(
        "gcloud compute ssh hydrostream-dev-monitoring --tunnel-through-iap")
    assert out["dataproc_cluster"] == "hydrostream-dev"
    assert {"consumer_job_id", "producer_job_id", "release"} <= set(out)
    assert dev.secret_outputs == frozenset()
