"""Typed, validated stack settings: the only reader of the Pulumi stack configuration.

A stack file (`stacks/Pulumi.<stack>.yaml`) holds only what differs from the defaults below.
`parse_settings` turns its raw values into one frozen `StackSettings`, or raises one
`SettingsError` that lists every problem as `stack, key, bad value, what is allowed`. The
program calls it before declaring any resource, so an invalid stack registers nothing.

Keys (namespace `hydrostream:` unless noted; objects are YAML mappings):
    target           "gcp" | "local"                          (default "gcp")
    network          subnet_cidr, grafana_source_ranges
    dataproc         master, worker, workers (left out: derived from the load), spare_workers,
                     boot_disk_gb, idle_delete_minutes
    kafka            machine, disk_gb, partitions, retention_hours, dead_letter_retention_hours,
                     brokers, min_insync_replicas
    influxdb         machine, disk_gb, org, bucket, retention_days
    monitoring       machine, disk_gb
    backups          snapshot_retention_days, influxdb_retention_days   (prod: at least 14 each)
    alerting         email_to, email_from, smarthost, smtp_username, webhook, pagerduty, runbook_base_url
                     (the receivers' secrets are separate secret keys: RECEIVER_SECRET_KEYS)
    jobs             release, rate, farms, devices_per_farm, trigger, window, slide, watermark,
                     max_offsets_per_trigger, max_failures_per_hour, max_failures_total
    protect          true on prod: deletion protection and `protect` on stateful resources
    local            bind_address                               (local target only)
    gcp:project, gcp:region, gcp:zone                           (gcp target only)
    docker:host                                                 (local target only: the Docker provider's)

Any other namespace is refused (a typo such as `hydrostrem:jobs` would otherwise be dropped unread).
"""

from __future__ import annotations

import dataclasses
import ipaddress
import json
import math
import re
import types
import typing
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pulumi
import pulumi.runtime.config
from hydrostream_jobs import durations

from infra import capacity, catalog, sizing
from infra.release.bundle import is_release_digest

NAMESPACE = "hydrostream"
STACKS = ("local", "dev", "staging", "prod")
# A single broker, or three: the smallest KRaft quorum that survives the loss of one node.
BROKER_COUNTS = (1, 3)
TARGETS = ("gcp", "local")

# Regions this project deploys to and their zones (extend deliberately: quotas and prices differ).
REGIONS: dict[str, tuple[str, ...]] = {
    "europe-west1": ("europe-west1-b", "europe-west1-c", "europe-west1-d"),
    "europe-west3": ("europe-west3-a", "europe-west3-b", "europe-west3-c"),
    "europe-west4": ("europe-west4-a", "europe-west4-b", "europe-west4-c"),
    "us-central1": ("us-central1-a", "us-central1-b", "us-central1-c", "us-central1-f"),
    "us-east1": ("us-east1-b", "us-east1-c", "us-east1-d"),
    "us-west1": ("us-west1-a", "us-west1-b", "us-west1-c"),
}

# Prod keeps two weeks of data-disk snapshots and InfluxDB backups at least: a fault noticed after a
# weekend plus a week of investigation can still be rolled back.
PROD_MIN_BACKUP_DAYS = 14

# A sliding window copies each reading into window / slide windows (Spark expands the row before the
# aggregate), so the consumer's work per reading and its state grow with the ratio. The measured
# capacity per core (sizing.CONSUMER_READINGS_PER_CORE) is for DESIGN's 5m / 1m, five windows; an hour
# slid by the minute (60) is the most a stack may ask for: 24h / 1s would be 86,400 copies of a reading.
MAX_WINDOWS_PER_READING = 60
# The consumer's Kafka read cap per micro-batch when a stack sets none and its rate needs no more.
DEFAULT_READ_CAP = 100_000
# Where this repository's files are published on the web: alerts link their runbook (docs/operations.md)
# below it unless a stack names another copy (alerting.runbook_base_url).
REPOSITORY_URL = "https://github.com/hydrostream/hydrostream/blob/main/"
# Grafana may be opened to operators' networks, never to a large part of the internet: together the
# ranges cover at most a /16's worth of public addresses (65,536; a site or a cloud NAT range is far less).
MAX_PUBLIC_GRAFANA_ADDRESSES = 2 ** 16
# Addresses that are not on the public internet (RFC 1918, CGNAT, loopback, link-local): not counted.
_NOT_PUBLIC = tuple(ipaddress.IPv4Network(cidr) for cidr in (
    "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"))
# Keys that only make sense on some stacks: set elsewhere they would be taken and do nothing, or harm.
STACK_ONLY_KEYS: dict[str, tuple[str, ...]] = {
    # Prod and staging run continuously; a deleted cluster there is an outage, not a saving.
    "dataproc.idle_delete_minutes": ("dev",),
}
# Provider namespaces the program passes through, with the provider keys it accepts and its target.
PROVIDER_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "gcp": ("gcp", ("project", "region", "zone")),
    "docker": ("local", ("host",)),
}
_NAME = re.compile(r"[a-z][a-z0-9-]{0,61}[a-z0-9]")
_PROJECT = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")


class SettingsError(pulumi.RunError):
    """Invalid stack configuration; the message names the stack, each key, its value and what is allowed."""


class _Invalid(ValueError):
    """One bad value; `allowed` says what would be accepted."""

    def __init__(self, allowed: str):
        super().__init__(allowed)
        self.allowed = allowed


# Validators: take the raw (already type-checked) value, return the typed value or raise _Invalid.

def _between(low: int, high: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise _Invalid(f"an integer from {low} to {high}")
        return value
    return check


def _count_of(*choices: int) -> Callable[[int], int]:
    def check(value: int) -> int:
        if value not in choices:
            raise _Invalid("one of " + ", ".join(map(str, choices)))
        return value
    return check


def _sized(parse: Callable[[str], sizing.MachineShape]) -> Callable[[str], sizing.MachineShape]:
    def check(value: str) -> sizing.MachineShape:
        try:
            return parse(value)
        except sizing.SizingError as error:
            raise _Invalid(f"a supported machine type ({error})") from None
    return check


def _cidr(value: str) -> str:
    try:
        network = ipaddress.IPv4Network(value, strict=True)
    except ValueError as error:
        raise _Invalid(f"an IPv4 CIDR such as 10.20.0.0/24 ({error})") from None
    if network.prefixlen == 0:
        raise _Invalid("a CIDR narrower than /0: the pipeline is never opened to the whole internet")
    return str(network)


def _private_cidr(value: str) -> str:
    cidr = _cidr(value)
    network = ipaddress.IPv4Network(cidr)
    if not network.is_private or not 16 <= network.prefixlen <= 29:
        raise _Invalid("a private (RFC 1918) IPv4 range from /16 to /29, such as 10.20.0.0/24")
    return cidr


def _duration(value: str) -> str:
    try:
        return durations.check(value)
    except durations.DurationError:
        raise _Invalid(durations.GRAMMAR) from None


def _trigger(value: str) -> str:
    return value if value == "available-now" else _duration(value)


def _release(value: str | None) -> str | None:
    if value is not None and not is_release_digest(value):
        raise _Invalid("a release digest: 64 lowercase hex characters"
                       " (`python -m infra.release.bundle` prints it)")
    return value


def _resource_name(value: str) -> str:
    if not _NAME.fullmatch(value):
        raise _Invalid("lowercase letters, digits and hyphens, starting with a letter, 2-63 characters")
    return value


def _public_addresses(network: ipaddress.IPv4Network) -> int:
    """How many of `network`'s addresses are on the public internet (CIDRs nest or are disjoint)."""
    hidden = sum(min(network.num_addresses, block.num_addresses) for block in _NOT_PUBLIC
                 if network.subnet_of(block) or block.subnet_of(network))
    return network.num_addresses - hidden


def _cidrs(value: tuple[str, ...]) -> tuple[str, ...]:
    ranges = tuple(_cidr(item) for item in value)
    union = ipaddress.collapse_addresses(ipaddress.IPv4Network(cidr) for cidr in ranges)
    public = sum(_public_addresses(network) for network in union)
    if public > MAX_PUBLIC_GRAFANA_ADDRESSES:
        raise _Invalid(f"ranges that together cover at most {MAX_PUBLIC_GRAFANA_ADDRESSES:,} public "
                       f"addresses (a /16): these cover {public:,}, {public / 2 ** 32:.2%} of the IPv4 "
                       f"internet; name the operators' networks, or leave it empty and use IAP forwarding")
    return ranges


def _loopback(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise _Invalid("a loopback address such as 127.0.0.1") from None
    if not address.is_loopback:
        raise _Invalid("a loopback address such as 127.0.0.1: local ports are never published beyond it")
    return value


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
_SMARTHOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?:([0-9]{1,5})")


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.fullmatch(value):
        raise _Invalid("an e-mail address such as oncall@example.com")
    return value


def _smarthost(value: str | None) -> str | None:
    if value is None:
        return None
    match = _SMARTHOST.fullmatch(value)
    # GCP blocks outbound port 25: relays take submission (587) or SMTPS (465).
    if not match or match.group(1) == "25" or not 0 < int(match.group(1)) < 65536:
        raise _Invalid("host:port of an SMTP relay on a port other than 25 (GCP blocks 25), e.g. "
                       "smtp.example.com:587")
    return value


def _base_url(value: str) -> str:
    url = urllib.parse.urlsplit(value)
    if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment \
            or any(character.isspace() for character in value):
        raise _Invalid("an absolute http(s) URL without query or fragment, under which docs/operations.md "
                       f"is published, such as {REPOSITORY_URL}")
    return value if value.endswith("/") else f"{value}/"


def _check_webhook_url(value: str) -> str:
    """The webhook URL secret's value, refused (without showing it) unless an http(s) URL."""
    url = urllib.parse.urlsplit(value.strip())
    if url.scheme not in ("http", "https") or not url.hostname:
        raise SettingsError(f"{NAMESPACE}:{RECEIVER_SECRET_KEYS[catalog.WEBHOOK_URL]}: not an http(s) URL "
                            f"(the value is a secret and not shown)")
    return value


def _setting(default: Any, check: Callable[[Any], Any] | None = None, raw: type | None = None,
             wrong_type: str | None = None) -> Any:
    """A dataclass field with its default, the validator, (when it differs) the raw YAML type, and
    what to say instead of the type's name when a value of another type is given."""
    return field(default=default, metadata={"check": check, "raw": raw, "wrong_type": wrong_type})


# The sections. Defaults are the dev-sized values; a stack file overrides only what differs.

@dataclass(frozen=True)
class NetworkSettings:
    subnet_cidr: str = _setting("10.20.0.0/24", _private_cidr)
    # Who may reach Grafana on 3000 directly; empty: operators use IAP port forwarding.
    grafana_source_ranges: tuple[str, ...] = _setting((), _cidrs)


@dataclass(frozen=True)
class DataprocSettings:
    # Left out: the stack model derives them, the cheapest cluster for the load (infra/right_size.py).
    master: sizing.MachineShape | None = _setting(None, _sized(sizing.master_shape), str)
    worker: sizing.MachineShape | None = _setting(None, _sized(sizing.worker_shape), str)
    workers: int | None = _setting(None, _between(sizing.MIN_DATAPROC_WORKERS, 50))
    # Workers the cluster may lose and still carry the load and start both jobs (prod: 1).
    spare_workers: int = _setting(0, _between(0, 2))
    boot_disk_gb: int = _setting(100, _between(50, 1000))
    # Deletes an idle dev cluster; a running streaming job keeps it busy, so this never fires under load.
    idle_delete_minutes: int | None = _setting(None, lambda v: v if v is None else _between(10, 10080)(v))

    @property
    def pinned(self) -> tuple[str, ...]:
        """The shape keys the stack file sets; the model derives the others."""
        return tuple(key for key in ("master", "worker", "workers") if getattr(self, key) is not None)


@dataclass(frozen=True)
class KafkaSettings:
    machine: sizing.MachineShape = _setting(
        sizing.SHAPES["e2-standard-2"], _sized(sizing.service_vm_shape), str)
    disk_gb: int = _setting(50, _between(10, 4000))
    partitions: int = _setting(6, _between(1, 256))
    retention_hours: int = _setting(72, _between(1, 8760))
    dead_letter_retention_hours: int = _setting(168, _between(1, 8760))
    # 1: one VM. 3: three VMs in three zones of the region, every partition on all three, so the
    # cluster keeps its data and its quorum when one broker or one zone is lost (infra/gcp/kafka.py).
    brokers: int = _setting(1, _count_of(*BROKER_COUNTS))
    # Replicas that must hold a write before `acks=all` succeeds; none: 1 with one broker, 2 with
    # three (then one broker may be down and producers still write, two down and they fail).
    min_insync_replicas: int | None = _setting(
        None, lambda v: v if v is None else _between(1, max(BROKER_COUNTS) - 1)(v))

    @property
    def replication_factor(self) -> int:
        """Every topic, internal ones included, has a replica on each broker."""
        return self.brokers

    @property
    def min_isr(self) -> int:
        """`min_insync_replicas`, or its default for the broker count."""
        if self.min_insync_replicas is not None:
            return self.min_insync_replicas
        return 1 if self.brokers == 1 else 2


@dataclass(frozen=True)
class InfluxdbSettings:
    machine: sizing.MachineShape = _setting(
        sizing.SHAPES["e2-standard-2"], _sized(sizing.service_vm_shape), str)
    disk_gb: int = _setting(50, _between(10, 4000))
    org: str = _setting("hydro", _resource_name)
    bucket: str = _setting("hydro", _resource_name)
    retention_days: int = _setting(30, _between(1, 3650))


@dataclass(frozen=True)
class MonitoringSettings:
    machine: sizing.MachineShape = _setting(
        sizing.SHAPES["e2-standard-2"], _sized(sizing.service_vm_shape), str)
    disk_gb: int = _setting(30, _between(10, 4000))


@dataclass(frozen=True)
class BackupsSettings:
    # How long the daily snapshots of every data disk are kept (infra/gcp/service_vm.py).
    snapshot_retention_days: int = _setting(3, _between(1, 3650))
    # How long the daily InfluxDB backups stay in the backup bucket (infra/gcp/storage.py).
    influxdb_retention_days: int = _setting(3, _between(1, 3650))


@dataclass(frozen=True)
class AlertingSettings:
    """Where Alertmanager sends alerts; none set: alerts show in Alertmanager's UI only."""

    email_to: str | None = _setting(None, _email)
    email_from: str | None = _setting(None, _email)
    smarthost: str | None = _setting(None, _smarthost)
    # With a username the relay's password is the secret key RECEIVER_SECRET_KEYS[SMTP_PASSWORD].
    smtp_username: str | None = _setting(None)
    # Warnings, criticals and the watchdog's heartbeat go to a webhook whose URL (a dead man's switch's
    # often carries a token) is the secret key RECEIVER_SECRET_KEYS[WEBHOOK_URL].
    webhook: bool = _setting(False)
    # The routing key is the secret key RECEIVER_SECRET_KEYS[PAGERDUTY_ROUTING_KEY].
    pagerduty: bool = _setting(False)
    # Every alert's runbook_url is docs/operations.md#<alert> below this address (ends with "/").
    runbook_base_url: str = _setting(REPOSITORY_URL, _base_url)

    @property
    def email(self) -> bool:
        """Whether alerts go out by e-mail."""
        return self.email_to is not None

    @property
    def secrets(self) -> tuple[str, ...]:
        """The catalog receiver secrets this configuration needs, in catalog order."""
        wanted = {catalog.PAGERDUTY_ROUTING_KEY: self.pagerduty,
                  catalog.SMTP_PASSWORD: self.email and self.smtp_username is not None,
                  catalog.WEBHOOK_URL: self.webhook}
        return tuple(secret for secret in catalog.RECEIVER_SECRETS if wanted[secret])


# catalog receiver secret -> its secret config key (`pulumi config set --secret hydrostream:<key>`).
# Never read as plain configuration: only as a Pulumi secret (`receiver_secret_values`).
RECEIVER_SECRET_KEYS: dict[str, str] = {
    catalog.PAGERDUTY_ROUTING_KEY: "pagerduty_routing_key",
    catalog.SMTP_PASSWORD: "smtp_password",
    catalog.WEBHOOK_URL: "webhook_url",
}


@dataclass(frozen=True)
class JobsSettings:
    # None: follow the working tree (dev, local); staging and prod pin the promoted release.
    release: str | None = _setting(None, _release, wrong_type=(
        "a release digest in quotes: 64 lowercase hex characters (unquoted, YAML 1.2 reads one of "
        "digits, or digits with a single e, as a number)"))
    rate: int = _setting(500, _between(1, 1_000_000))
    farms: int = _setting(3, _between(1, 1000))
    devices_per_farm: int = _setting(20, _between(1, 10_000))
    trigger: str = _setting("30s", _trigger)
    window: str = _setting("5m", _duration)
    slide: str = _setting("1m", _duration)
    watermark: str = _setting("10m", _duration)
    # The outage the consumer must absorb (its readings wait in Kafka) and the time it may take to work
    # the backlog off once it runs again: the read cap and the consumer's capacity must allow it.
    catch_up_outage: str = _setting("1h", _duration)
    catch_up_within: str = _setting("15m", _duration)
    # The Kafka read cap per micro-batch; none: the least that meets the catch-up above (at least
    # DEFAULT_READ_CAP and twice what `rate` brings in one trigger).
    max_offsets_per_trigger: int | None = _setting(
        None, lambda v: v if v is None else _between(1, 100_000_000)(v))
    max_failures_per_hour: int = _setting(5, _between(1, 10))
    max_failures_total: int = _setting(20, _between(1, 240))

    @property
    def read_cap(self) -> int:
        """`max_offsets_per_trigger`, or its default: DEFAULT_READ_CAP, raised to what drains a backlog
        and to what meets the catch-up target."""
        if self.max_offsets_per_trigger is not None:
            return self.max_offsets_per_trigger
        return max(DEFAULT_READ_CAP, min_read_cap(self) or 0, catch_up_read_cap(self) or 0)

    @property
    def catch_up_read_rate(self) -> float:
        """Readings per second the consumer must read while behind to meet the catch-up target: the
        arrivals, plus the outage's backlog spread over the time allowed."""
        outage, within = (durations.milliseconds(d) for d in (self.catch_up_outage, self.catch_up_within))
        return self.rate * (1 + outage / within)


@dataclass(frozen=True)
class LocalSettings:
    bind_address: str = _setting("127.0.0.1", _loopback)


@dataclass(frozen=True)
class GcpSettings:
    project: str
    region: str
    zone: str


@dataclass(frozen=True)
class StackSettings:
    """Everything a stack may vary, typed and validated."""

    stack: str
    target: str
    gcp: GcpSettings | None
    network: NetworkSettings
    dataproc: DataprocSettings
    kafka: KafkaSettings
    influxdb: InfluxdbSettings
    monitoring: MonitoringSettings
    backups: BackupsSettings
    alerting: AlertingSettings
    jobs: JobsSettings
    local: LocalSettings
    protect: bool

    @property
    def broker_zones(self) -> tuple[str, ...]:
        """Each broker's zone: broker 1 in the stack's zone, the others in the region's next zones."""
        if self.gcp is None:
            raise ValueError(f"stack {self.stack!r}: brokers have zones only on the gcp target")
        others = [zone for zone in REGIONS[self.gcp.region] if zone != self.gcp.zone]
        return (self.gcp.zone, *others)[:self.kafka.brokers]

    @property
    def labels(self) -> dict[str, str]:
        """Labels every labelable resource carries."""
        return {"app": "hydrostream", "env": self.stack}


SECTIONS: dict[str, type] = {
    "network": NetworkSettings,
    "dataproc": DataprocSettings,
    "kafka": KafkaSettings,
    "influxdb": InfluxdbSettings,
    "monitoring": MonitoringSettings,
    "backups": BackupsSettings,
    "alerting": AlertingSettings,
    "jobs": JobsSettings,
    "local": LocalSettings,
}
SCALARS = ("target", "protect")
GCP_KEYS = PROVIDER_KEYS["gcp"][1]


def _type_name(kind: Any) -> str:
    names = {str: "a string", int: "an integer", bool: "true or false", tuple: "a list of strings"}
    return names.get(kind, getattr(kind, "__name__", str(kind)))


def _coerce(value: Any, kind: Any) -> Any:
    """Check the YAML value against the field's raw type; raise _Invalid naming the expected type."""
    args = typing.get_args(kind)
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        kind = next(a for a in args if a is not type(None))
    if typing.get_origin(kind) is tuple:
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise _Invalid("a list of strings")
        return tuple(value)
    # bool is an int in Python; a YAML `true` is not a count.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise _Invalid(_type_name(kind))
    return value


def _section(name: str, cls: type, raw: Any, errors: list[tuple[str, Any, str]]) -> Any:
    key = f"{NAMESPACE}:{name}"
    if raw is None:
        return cls()
    if not isinstance(raw, Mapping):
        errors.append((key, raw, "a mapping with keys " + ", ".join(f.name for f in dataclasses.fields(cls))))
        return None
    known = {f.name: f for f in dataclasses.fields(cls)}
    values = {}
    count = len(errors)
    for sub, value in raw.items():
        if sub not in known:
            errors.append((f"{key}.{sub}", value, "one of the keys " + ", ".join(known)))
            continue
        spec = known[sub]
        hints = typing.get_type_hints(cls)
        kind = spec.metadata.get("raw") or hints[sub]
        try:
            typed = _coerce(value, kind)
        except _Invalid as bad:
            errors.append((f"{key}.{sub}", value, spec.metadata["wrong_type"] or bad.allowed))
            continue
        try:
            check = spec.metadata.get("check")
            values[sub] = check(typed) if check else typed
        except _Invalid as bad:
            errors.append((f"{key}.{sub}", value, bad.allowed))
    if len(errors) > count:
        # A bad value was dropped: its default in its place would feed the checks across keys a value
        # nobody wrote (a window '0s' refused, then '5m' reported shorter than the slide).
        return None
    return cls(**values)


def _decode(value: Any) -> Any:
    """Pulumi hands structured config to programs as JSON text; plain strings stay strings."""
    if isinstance(value, str):
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def parse_settings(stack: str, config: Mapping[str, Any]) -> StackSettings:
    """Validate a stack's raw configuration (`namespace:key` -> value) into `StackSettings`."""
    errors: list[tuple[str, Any, str]] = []
    raw = {key: _decode(value) for key, value in config.items()}

    if stack not in STACKS:
        errors.append(("stack", stack, "one of " + ", ".join(STACKS)))
    target = raw.get(f"{NAMESPACE}:target", "local" if stack == "local" else "gcp")
    if target not in TARGETS:
        errors.append((f"{NAMESPACE}:target", target, "one of " + ", ".join(TARGETS)))
    _check_names(raw, target, errors)
    protect = raw.get(f"{NAMESPACE}:protect", False)
    if not isinstance(protect, bool):
        errors.append((f"{NAMESPACE}:protect", protect, "true or false"))

    sections = {name: _section(name, cls, raw.get(f"{NAMESPACE}:{name}"), errors)
                for name, cls in SECTIONS.items()}
    _check_stack_only_keys(stack, sections, errors)
    if target == "gcp" and f"{NAMESPACE}:local" in raw:
        errors.append((f"{NAMESPACE}:local", raw[f"{NAMESPACE}:local"],
                       "no `local` section on the gcp target (it configures the local stack's Docker ports)"))
    if sections["jobs"] is not None:
        _check_jobs(sections["jobs"], errors)
        if sections["kafka"] is not None:
            _check_outage_kept(sections["jobs"], sections["kafka"], errors)
    gcp = _gcp(raw, errors) if target == "gcp" else None
    # A cluster the stack pins whole is checked here; the model derives the rest and refuses, naming
    # these keys, a load no cluster with the pinned shapes carries.
    pinned = target == "gcp" and sections["dataproc"] is not None and len(sections["dataproc"].pinned) == 3
    if pinned:
        dataproc = sections["dataproc"]
        try:
            spark = sizing.spark_sizing(dataproc.master, dataproc.worker, dataproc.workers)
            sizing.check_application_masters(spark, dataproc.workers - dataproc.spare_workers)
        except sizing.SizingError as error:
            errors.append(
                (f"{NAMESPACE}:dataproc", f"{dataproc.workers} x {dataproc.worker.name}", str(error)))
    if pinned and sections["jobs"] is not None:
        _check_capacity(sections["dataproc"], sections["jobs"], errors)
    if stack == "prod" and sections["backups"] is not None:
        _check_prod_backups(sections["backups"], errors)
    if sections["alerting"] is not None:
        _check_alerting(sections["alerting"], target, errors)
    if sections["kafka"] is not None:
        _check_kafka(sections["kafka"], target, gcp, errors)

    if errors:
        lines = [f"stack {stack!r}: invalid configuration ({len(errors)} problem"
                 f"{'s' if len(errors) > 1 else ''}); nothing was deployed:"]
        lines += [f"  {key} = {value!r}: expected {allowed}" for key, value, allowed in errors]
        raise SettingsError("\n".join(lines))
    return StackSettings(stack=stack, target=target, gcp=gcp, protect=protect, **sections)


def _check_names(raw: Mapping[str, Any], target: str, errors: list[tuple[str, Any, str]]) -> None:
    """Refuse a key outside this program's namespace and the providers' keys it passes through."""
    own = ", ".join(f"{NAMESPACE}:{k}" for k in (*SCALARS, *SECTIONS))
    for key, value in raw.items():
        namespace, _, name = key.partition(":")
        if namespace == NAMESPACE:
            if name in RECEIVER_SECRET_KEYS.values():
                continue  # read only as a secret; never echoed, even when misplaced
            if name not in SECTIONS and name not in SCALARS:
                errors.append((key, value, "one of the keys " + own))
        elif namespace in PROVIDER_KEYS:
            provider_target, names = PROVIDER_KEYS[namespace]
            if provider_target != target:
                errors.append((key, value, f"no {namespace}: keys on the {target} target (they configure "
                                           f"the {provider_target} target's provider)"))
            elif name not in names:
                errors.append((key, value, f"one of {namespace}:" + f", {namespace}:".join(names)))
        else:
            known = ", ".join(f"{space}:" for space in (NAMESPACE, *PROVIDER_KEYS))
            errors.append((key, value, f"a key in a known namespace ({known}): `{namespace}:` is none "
                                       f"of them, so nothing would read this key"))


def _check_stack_only_keys(stack: str, sections: Mapping[str, Any],
                           errors: list[tuple[str, Any, str]]) -> None:
    """Refuse a key set on a stack it does not belong to (STACK_ONLY_KEYS)."""
    for dotted, stacks in STACK_ONLY_KEYS.items():
        section, _, name = dotted.partition(".")
        value = getattr(sections[section], name, None) if sections[section] is not None else None
        if value is not None and stack not in stacks:
            errors.append((f"{NAMESPACE}:{dotted}", value,
                           f"unset on {stack}: it is for {' and '.join(stacks)} only"))


def min_read_cap(jobs: JobsSettings) -> int | None:
    """The least `max_offsets_per_trigger` that drains a backlog: the configured rate's readings in one
    trigger, twice (as capacity.MAX_LOAD keeps half the cores for backlogs); None for `available-now`
    (one run over what is there, then it stops)."""
    if jobs.trigger == "available-now":
        return None
    return math.ceil(jobs.rate * durations.milliseconds(jobs.trigger) / 1000 / capacity.MAX_LOAD)


def catch_up_read_cap(jobs: JobsSettings) -> int | None:
    """The least `max_offsets_per_trigger` that reads `catch_up_read_rate` (a batch that finishes early
    waits for its trigger); None for `available-now`."""
    if jobs.trigger == "available-now":
        return None
    return math.ceil(jobs.catch_up_read_rate * durations.milliseconds(jobs.trigger) / 1000)


def _check_jobs(jobs: JobsSettings, errors: list[tuple[str, Any, str]]) -> None:
    """Refuse windows Spark rejects or that multiply the state, and a read cap the rate outruns."""
    key = f"{NAMESPACE}:jobs"
    window, slide = durations.milliseconds(jobs.window), durations.milliseconds(jobs.slide)
    if window < slide:
        errors.append((f"{key}.window", jobs.window,
                       f"at least the slide ({jobs.slide}): Spark refuses a sliding window shorter than its "
                       f"step, and readings between two windows would be counted in none"))
    elif window / slide > MAX_WINDOWS_PER_READING:
        least_slide = -(-window // MAX_WINDOWS_PER_READING)
        errors.append((f"{key}.slide", jobs.slide,
                       f"at least {durations.text(least_slide)} with a {jobs.window} window: each reading is "
                       f"counted in window / slide windows ({window / slide:,.0f} here), at most "
                       f"{MAX_WINDOWS_PER_READING}, or the consumer's work and state grow with them"))
    least, target = min_read_cap(jobs), catch_up_read_cap(jobs)
    if least is not None and jobs.read_cap < least:
        errors.append((f"{key}.max_offsets_per_trigger", jobs.read_cap,
                       f"at least {least:,}: twice what {key}.rate ({jobs.rate}/s) brings in one trigger "
                       f"({jobs.trigger}), so that a backlog drains; a lower cap lets the lag grow forever"))
    elif target is not None and jobs.read_cap < target:
        errors.append((f"{key}.max_offsets_per_trigger", jobs.read_cap,
                       f"at least {target:,} to work off a {jobs.catch_up_outage} outage's backlog within "
                       f"{jobs.catch_up_within} ({key}.catch_up_outage, {key}.catch_up_within) at "
                       f"{jobs.rate}/s, which reads {jobs.catch_up_read_rate:,.0f} readings/s while behind, "
                       f"{target:,} per {jobs.trigger} trigger; raise the cap, or allow a longer catch-up"))
    if durations.milliseconds(jobs.catch_up_within) < durations.milliseconds(jobs.catch_up_outage) / 100:
        errors.append((f"{key}.catch_up_within", jobs.catch_up_within,
                       f"at least a hundredth of {key}.catch_up_outage ({jobs.catch_up_outage}): faster "
                       f"means reading over a hundred times the rate while behind"))


def _check_outage_kept(jobs: JobsSettings, kafka: KafkaSettings, errors: list[tuple[str, Any, str]]) -> None:
    """Refuse an outage to absorb that outlasts what the readings topic keeps: its start would be lost."""
    if durations.milliseconds(jobs.catch_up_outage) > kafka.retention_hours * 3_600_000:
        errors.append((f"{NAMESPACE}:jobs.catch_up_outage", jobs.catch_up_outage,
                       f"at most {NAMESPACE}:kafka.retention_hours ({kafka.retention_hours}h): the readings "
                       f"of a longer outage are deleted before the consumer reads them"))


def _check_capacity(dataproc: DataprocSettings, jobs: JobsSettings,
                    errors: list[tuple[str, Any, str]]) -> None:
    """Refuse a configured rate above half of what the consumer's executors process (infra.capacity)."""
    try:
        spark = sizing.spark_sizing(dataproc.master, dataproc.worker, dataproc.workers)
    except sizing.SizingError:
        return  # already reported under hydrostream:dataproc
    consumer = capacity.consumer_capacity(spark, jobs.rate)
    if dataproc.spare_workers:  # the load must be carried with that many workers lost
        consumer = dataclasses.replace(consumer, executors=sizing.surviving_consumer_executors(
            spark, dataproc.workers, dataproc.spare_workers))
    if not consumer.fits:
        errors.append((capacity.RATE_KEY, jobs.rate, capacity.too_fast(consumer)))
    elif consumer.readings_per_second < jobs.catch_up_read_rate:
        key = f"{NAMESPACE}:jobs"
        errors.append((f"{key}.catch_up_within", jobs.catch_up_within,
                       f"a time the consumer can meet: a {jobs.catch_up_outage} outage's backlog within "
                       f"{jobs.catch_up_within} needs {jobs.catch_up_read_rate:,.0f} readings/s, and its "
                       f"executors process {consumer.readings_per_second:,}/s; allow longer, or give it "
                       f"more cores with {' or '.join(capacity.SIZE_KEYS)}"))


def _check_prod_backups(backups: BackupsSettings, errors: list[tuple[str, Any, str]]) -> None:
    """Refuse a prod retention shorter than PROD_MIN_BACKUP_DAYS for snapshots or backups."""
    for key in ("snapshot_retention_days", "influxdb_retention_days"):
        days = getattr(backups, key)
        if days < PROD_MIN_BACKUP_DAYS:
            errors.append((f"{NAMESPACE}:backups.{key}", days,
                           f"at least {PROD_MIN_BACKUP_DAYS} days on prod (an integer from "
                           f"{PROD_MIN_BACKUP_DAYS} to 3650)"))


def _check_alerting(alerting: AlertingSettings, target: str, errors: list[tuple[str, Any, str]]) -> None:
    """E-mail needs a sender and a relay; receivers are GCP's (the local stack has no secret store)."""
    key = f"{NAMESPACE}:alerting"
    configured = alerting.email or alerting.pagerduty or alerting.webhook
    if target == "local" and configured:
        errors.append((key, "receivers", "none on the local stack: alerts show in Alertmanager's UI only"))
    mail = {"email_from": alerting.email_from, "smarthost": alerting.smarthost}
    if alerting.email:
        for sub, value in mail.items():
            if value is None:
                errors.append((f"{key}.{sub}", None, "set when email_to is (the sender and the SMTP relay)"))
    elif any(value is not None for value in (*mail.values(), alerting.smtp_username)):
        errors.append((f"{key}.email_to", None, "set when email_from, smarthost or smtp_username are"))


def receiver_secret_values(alerting: AlertingSettings) -> dict[str, pulumi.Output[str]]:
    """The configured receivers' secrets (catalog name -> secret Output), from Pulumi secret config.

    A missing one is an error naming the `pulumi config set --secret` command that sets it.
    """
    config = pulumi.Config(NAMESPACE)
    values: dict[str, pulumi.Output[str]] = {}
    for secret in alerting.secrets:
        key = RECEIVER_SECRET_KEYS[secret]
        value = config.get_secret(key)
        if value is None:
            raise SettingsError(f"stack {pulumi.get_stack()!r}: {NAMESPACE}:alerting needs the secret "
                                f"{NAMESPACE}:{key}: set it with `pulumi config set --secret "
                                f"{NAMESPACE}:{key}` (its value is never written to the stack file in clear)")
        values[secret] = value.apply(_check_webhook_url) if secret == catalog.WEBHOOK_URL else value
    return values


def _check_kafka(kafka: KafkaSettings, target: str, gcp: GcpSettings | None,
                 errors: list[tuple[str, Any, str]]) -> None:
    """Refuse a broker count the target or region cannot place, and a min ISR the brokers cannot meet."""
    key = f"{NAMESPACE}:kafka"
    if kafka.brokers > 1 and target == "local":
        errors.append((f"{key}.brokers", kafka.brokers, "1: the local stack runs one broker container"))
    if kafka.brokers > 1 and gcp is not None:
        zones = REGIONS[gcp.region]
        if len(zones) < kafka.brokers:
            errors.append((f"{key}.brokers", kafka.brokers,
                           f"at most {len(zones)}: {kafka.brokers} brokers go to {kafka.brokers} zones and "
                           f"region {gcp.region} has {len(zones)} ({', '.join(zones)})"))
    wanted = kafka.min_insync_replicas
    if wanted is not None:
        if kafka.brokers == 1 and wanted != 1:
            errors.append((f"{key}.min_insync_replicas", wanted,
                           "1 with one broker (it holds the only replica)"))
        elif kafka.brokers > 1 and wanted >= kafka.brokers:
            errors.append((f"{key}.min_insync_replicas", wanted,
                           f"fewer than the {kafka.brokers} brokers (1 to {kafka.brokers - 1}): with every "
                           f"replica required, losing one broker stops every producer"))


def _gcp(raw: Mapping[str, Any], errors: list[tuple[str, Any, str]]) -> GcpSettings | None:
    project, region, zone = (raw.get(f"gcp:{key}") for key in GCP_KEYS)
    count = len(errors)
    if not isinstance(project, str) or not _PROJECT.fullmatch(project):
        errors.append(("gcp:project", project, "a Google Cloud project id (6-30 lowercase letters, "
                                               "digits, hyphens)"))
    if region not in REGIONS:
        errors.append(("gcp:region", region, "one of " + ", ".join(REGIONS)))
    elif zone not in REGIONS[region]:
        errors.append(("gcp:zone", zone, f"a zone of {region}: " + ", ".join(REGIONS[region])))
    return GcpSettings(project, region, zone) if len(errors) == count else None


def given_keys() -> list[str]:
    """Every `namespace:key` the Pulumi engine gave this program: the CLI's PULUMI_CONFIG (the whole
    stack configuration of `pulumi up`) and the config map a test or the offline plan sets."""
    return [*pulumi.runtime.config.get_config_env(), *pulumi.runtime.config.CONFIG.get()]


def load_settings() -> StackSettings:
    """Read this stack's configuration through `pulumi.Config` and validate it."""
    stack = pulumi.get_stack()
    # pulumi.Config reads one named key and cannot list them, so the keys to read are this program's
    # own plus every key the engine was given (the stack file the plan or the CLI read, and what
    # `pulumi config set` wrote): a misspelt key is still named, and its value still comes from Pulumi.
    names = [*(f"{NAMESPACE}:{key}" for key in (*SCALARS, *SECTIONS)),
             *(f"{space}:{key}" for space, (_, keys) in PROVIDER_KEYS.items() for key in keys)]
    names += [key for key in dict.fromkeys(given_keys()) if key not in names]
    secret_names = {f"{NAMESPACE}:{key}" for key in RECEIVER_SECRET_KEYS.values()}
    names = [key for key in names if key not in secret_names]
    config: dict[str, Any] = {}
    for key in names:
        namespace, _, name = key.partition(":")
        if namespace and name:
            value = pulumi.Config(namespace).get(name)
            if value is not None:
                config[key] = value
    return parse_settings(stack, config)
