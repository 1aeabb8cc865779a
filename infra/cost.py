"""Monthly cost estimate of a GCP stack: what its plan registers, priced from the pinned table in prices.yaml.

The estimate reads the resources the program registered (`infra.tools.mocks.run_plan`), so machine types,
node counts, disk sizes and disk types are the ones that would be deployed, not a second copy;
vCPUs and memory come from the sizing catalog. Prices are on-demand list prices for 730 hours.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from infra import sizing

PRICES_FILE = Path(__file__).with_name("prices.yaml")
CLUSTER = "gcp:dataproc/cluster:Cluster"
INSTANCE = "gcp:compute/instance:Instance"
DISK = "gcp:compute/disk:Disk"
NAT = "gcp:compute/routerNat:RouterNat"
SUBNET = "gcp:compute/subnetwork:Subnetwork"
FIREWALL = "gcp:compute/firewall:Firewall"
AUDIT_CONFIG = "gcp:projects/iAMAuditConfig:IAMAuditConfig"
DNS_ZONE = "gcp:dns/managedZone:ManagedZone"
# Log volumes are assumptions, not measurements (issue 29's audit trail; re-measure once deployed with
# `gcloud logging read ... --format=json | wc -c` over a day):
# - VPC flow logs: about 25 long-lived connections per VM or node (Kafka clients and replication,
#   scrapes, InfluxDB writes, YARN and Spark between nodes), one entry per connection and minute at
#   the 1-minute aggregation, half of them sampled, ~1.5 KiB per entry with metadata:
#   25 x 43,200 min x 0.5 x 1.5 KiB = 0.77 GiB per VM and month.
FLOW_LOG_GIB_PER_VM_MONTH = 0.77
# - Data Access audit logs: dominated by the consumer's checkpoint on Cloud Storage, ~50 object
#   operations per micro-batch at a 30 s trigger, ~1.5 KiB per entry: 50 x 86,400 batches x 1.5 KiB
#   = 6.2 GiB a month; Secret Manager reads (each VM and job start) are negligible beside it.
AUDIT_LOG_GIB_MONTH = 6.2
# - Firewall rule logs (SSH from IAP and refused egress only): rare events, 0.1 GiB a month at most.
FIREWALL_LOG_GIB_MONTH = 0.1
# What the provider creates when a disk type is not set (Dataproc nodes and VM boot disks alike).
DEFAULT_DISK_TYPE = "pd-standard"
# AUTO_ONLY allocates external addresses as the gateway needs them: one serves this project's few VMs.
NAT_IPS = 1
NOT_ESTIMATED = ("Cloud Storage (priced by what the buckets hold)", "NAT traffic per GiB",
                 "network egress", "disk snapshots", "Secret Manager", "DNS queries",
                 "Cloud Logging beyond flow, firewall and audit logs, and Monitoring")


class PriceError(ValueError):
    """A price table that cannot price a plan; the message names what is missing."""


@dataclass(frozen=True)
class FamilyPrice:
    """On-demand price of one machine family's vCPU and GB of memory for an hour."""

    per_vcpu_hour: float
    per_gb_hour: float


@dataclass(frozen=True)
class RegionPrices:
    machine_families: Mapping[str, FamilyPrice]
    disks_per_gb_month: Mapping[str, float]
    storage_standard_per_gb_month: float


@dataclass(frozen=True)
class NatPrices:
    per_vm_hour: float
    vm_cap: int
    capped_gateway_hour: float
    per_ip_hour: float
    per_gib_processed: float

    def gateway_hour(self, vms: int, ips: int = NAT_IPS) -> float:
        """One gateway's hourly price for `vms` VMs using it and `ips` external addresses."""
        per_vms = self.per_vm_hour * vms if vms <= self.vm_cap else self.capped_gateway_hour
        return per_vms + self.per_ip_hour * ips


@dataclass(frozen=True)
class PriceTable:
    """The pinned prices, their sources and the date they were recorded."""

    recorded: str
    currency: str
    hours_per_month: int
    sources: Mapping[str, str]
    dataproc_premium_per_vcpu_hour: float
    nat: NatPrices
    regions: Mapping[str, RegionPrices]
    logging_per_gib: float
    dns_zone_month: float

    def region(self, name: str) -> RegionPrices:
        """The prices of region `name`; a PriceError lists the priced regions."""
        try:
            return self.regions[name]
        except KeyError:
            raise PriceError(f"no prices for region {name!r} in {PRICES_FILE.name}; priced: "
                             f"{', '.join(self.regions)} (add the region with its source)") from None

    def machine_hour(self, region: str, machine: sizing.MachineShape) -> float:
        """The hourly on-demand price of one `machine` in `region`."""
        family = machine.name.split("-")[0]
        families = self.region(region).machine_families
        if family not in families:
            raise PriceError(f"no {family} prices for {region} in {PRICES_FILE.name}; priced families: "
                             f"{', '.join(families)}")
        price = families[family]
        return machine.vcpus * price.per_vcpu_hour + machine.memory_gb * price.per_gb_hour

    def disk_month(self, region: str, disk_type: str, size_gb: float) -> float:
        """The monthly price of a `size_gb` persistent disk of `disk_type` in `region`."""
        disks = self.region(region).disks_per_gb_month
        if disk_type not in disks:
            raise PriceError(f"no {disk_type} prices for {region} in {PRICES_FILE.name}; priced disk "
                             f"types: {', '.join(disks)}")
        return size_gb * disks[disk_type]


def _number(raw: Mapping[str, Any], key: str, where: str) -> float:
    value = raw.get(key) if isinstance(raw, Mapping) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise PriceError(f"{PRICES_FILE.name}: {where}{key} = {value!r}: expected a positive number")
    return value


def _mapping(raw: Any, key: str, where: str) -> Mapping[str, Any]:
    value = raw.get(key) if isinstance(raw, Mapping) else None
    if not isinstance(value, Mapping) or not value:
        raise PriceError(f"{PRICES_FILE.name}: {where}{key} = {value!r}: expected a non-empty mapping")
    return value


def load_prices(path: Path = PRICES_FILE) -> PriceTable:
    """Read and check the price table; a PriceError names the first missing or bad figure."""
    raw = yaml.safe_load(path.read_text())
    if not isinstance(raw, Mapping) or not isinstance(raw.get("recorded"), str):
        raise PriceError(f"{path.name}: expected a mapping with `recorded` (the date the prices were read)")
    nat = _mapping(raw, "nat", "")
    regions = {}
    for name, region in _mapping(raw, "regions", "").items():
        where = f"regions.{name}."
        families = {
            family: FamilyPrice(_number(price, "per_vcpu_hour", f"{where}machine_families.{family}."),
                                _number(price, "per_gb_hour", f"{where}machine_families.{family}."))
            for family, price in _mapping(region, "machine_families", where).items()}
        disks = {disk: _number(_mapping(region, "disks_per_gb_month", where), disk,
                               f"{where}disks_per_gb_month.")
                 for disk in _mapping(region, "disks_per_gb_month", where)}
        regions[name] = RegionPrices(families, disks,
                                     _number(region, "storage_standard_per_gb_month", where))
    return PriceTable(
        recorded=raw["recorded"],
        currency=str(raw.get("currency", "")),
        hours_per_month=int(_number(raw, "hours_per_month", "")),
        sources=dict(_mapping(raw, "sources", "")),
        dataproc_premium_per_vcpu_hour=_number(raw, "dataproc_premium_per_vcpu_hour", ""),
        nat=NatPrices(*(_number(nat, key, "nat.") for key in (
            "per_vm_hour", "vm_cap", "capped_gateway_hour", "per_ip_hour", "per_gib_processed"))),
        regions=regions,
        logging_per_gib=_number(raw, "logging_per_gib", ""),
        dns_zone_month=_number(raw, "dns_zone_month", ""),
    )


@dataclass(frozen=True)
class LineItem:
    """One priced resource (or group of identical nodes) and its monthly price."""

    item: str       # the README table's row: the same across stacks
    detail: str     # what was priced, for the plan's printout
    monthly: float


@dataclass(frozen=True)
class Estimate:
    """A stack's monthly estimate, item by item."""

    stack: str
    region: str
    items: tuple[LineItem, ...]
    prices: PriceTable

    @property
    def total(self) -> float:
        return sum(item.monthly for item in self.items)


def _dataproc(cluster: Mapping[str, Any], region: str, prices: PriceTable) -> tuple[list[LineItem], int]:
    config = cluster.get("clusterConfig", {})
    hours = prices.hours_per_month
    items, vcpus, nodes, disks = [], 0, 0, []
    for key, label in (("masterConfig", "master"), ("workerConfig", "workers")):
        group = config.get(key) or {}
        count = int(group.get("numInstances", 1))
        machine = sizing.shape(group["machineType"])
        items.append(LineItem(f"Dataproc {label}", f"{count} x {machine.name}",
                              count * prices.machine_hour(region, machine) * hours))
        disk = group.get("diskConfig") or {}
        disks.append((count, float(disk["bootDiskSizeGb"]), disk.get("bootDiskType", DEFAULT_DISK_TYPE)))
        vcpus += count * machine.vcpus
        nodes += count
    if int((config.get("secondaryWorkerConfig") or {}).get("numInstances", 0)):
        raise PriceError("the cluster has secondary workers, which the estimate does not price")
    items.append(LineItem("Dataproc premium", f"{vcpus} vCPU",
                          vcpus * prices.dataproc_premium_per_vcpu_hour * hours))
    items.append(LineItem("Dataproc boot disks",
                          " + ".join(f"{n} x {gb:g} GB {kind}" for n, gb, kind in disks),
                          sum(n * prices.disk_month(region, kind, gb) for n, gb, kind in disks)))
    return items, nodes


def estimate_resources(stack: str, region: str, resources: Iterable[Any],
                       prices: PriceTable | None = None) -> Estimate:
    """Price the registered `resources` (`PlannedResource`s: type, name, inputs) of a GCP stack."""
    prices = prices or load_prices()
    hours = prices.hours_per_month
    items: list[LineItem] = []
    vms, gateways, zones = 0, 0, 0
    flow_logs = audited = firewall_logs = False
    order = {CLUSTER: 0, INSTANCE: 1, DISK: 2}
    for resource in sorted(resources, key=lambda r: (order.get(r.type, 3), r.name)):
        inputs = resource.inputs
        if resource.type == CLUSTER:
            cluster_items, nodes = _dataproc(inputs, region, prices)
            items += cluster_items
            vms += nodes
        elif resource.type == INSTANCE:
            machine = sizing.shape(inputs["machineType"])
            items.append(LineItem(f"{resource.name} VM", machine.name,
                                  prices.machine_hour(region, machine) * hours))
            boot = (inputs.get("bootDisk") or {}).get("initializeParams") or {}
            kind = boot.get("type", DEFAULT_DISK_TYPE)
            items.append(LineItem(f"{resource.name} boot disk", f"{float(boot['size']):g} GB {kind}",
                                  prices.disk_month(region, kind, float(boot["size"]))))
            vms += 1
        elif resource.type == DISK:
            kind = inputs.get("type", DEFAULT_DISK_TYPE)
            items.append(LineItem(f"{resource.name} disk", f"{float(inputs['size']):g} GB {kind}",
                                  prices.disk_month(region, kind, float(inputs["size"]))))
        elif resource.type == NAT:
            gateways += 1
        elif resource.type == SUBNET:
            flow_logs = flow_logs or bool(inputs.get("logConfig"))
        elif resource.type == FIREWALL:
            firewall_logs = firewall_logs or bool(inputs.get("logConfig"))
        elif resource.type == AUDIT_CONFIG:
            audited = True
        elif resource.type == DNS_ZONE:
            zones += 1
    if gateways:
        items.append(LineItem("Cloud NAT", f"{gateways} gateway x {vms} VMs + {NAT_IPS} IP",
                              gateways * prices.nat.gateway_hour(vms) * hours))
    if zones:
        items.append(LineItem("Cloud DNS zone", f"{zones} private zone", zones * prices.dns_zone_month))
    logged = {"flow": FLOW_LOG_GIB_PER_VM_MONTH * vms if flow_logs else 0.0,
              "audit": AUDIT_LOG_GIB_MONTH if audited else 0.0,
              "firewall": FIREWALL_LOG_GIB_MONTH if firewall_logs else 0.0}
    if any(logged.values()):
        detail = " + ".join(f"{name} {gib:.1f}" for name, gib in logged.items() if gib)
        items.append(LineItem("Flow, firewall and audit logs", f"{detail} GiB (assumed volumes)",
                              sum(logged.values()) * prices.logging_per_gib))
    return Estimate(stack, region, tuple(items), prices)


def estimate(plan: Any, prices: PriceTable | None = None) -> Estimate | None:
    """The monthly estimate of a planned GCP stack (`infra.tools.mocks.Plan`); None for the local target."""
    model = plan.model
    if model is None or model.gcp is None:
        return None
    return estimate_resources(plan.stack, model.gcp.region, plan.resources, prices)


def _money(value: float) -> str:
    return f"{value:,.2f}"


def report(estimate: Estimate | None) -> list[str]:
    """The plan's cost lines."""
    if estimate is None:
        return ["cost: none in the cloud (local Docker target)"]
    prices = estimate.prices
    width = max((len(f"{i.item}: {i.detail}") for i in estimate.items), default=5) + 2
    lines = [f"cost ({estimate.region}, {prices.currency} per month of {prices.hours_per_month} h, "
             f"on-demand list prices recorded {prices.recorded}, infra/{PRICES_FILE.name}):"]
    lines += [f"  {f'{i.item}: {i.detail}':<{width}}{_money(i.monthly):>10}" for i in estimate.items]
    lines.append(f"  {'total':<{width}}{_money(estimate.total):>10}")
    lines.append("  not included: " + ", ".join(NOT_ESTIMATED))
    return lines


def readme_table(estimates: Sequence[Estimate]) -> str:
    """The README's cost table: one row per item, one column per stack, totals last."""
    rows: list[str] = []
    for estimate in estimates:
        rows += [i.item for i in estimate.items if i.item not in rows]
    cells = [{i.item: i.monthly for i in e.items} for e in estimates]
    currency = estimates[0].prices.currency if estimates else ""
    lines = ["| item | " + " | ".join(f"{e.stack} ({currency}/month)" for e in estimates) + " |",
             "|---|" + "---:|" * len(estimates)]
    for row in rows:
        lines.append(f"| {row} | " + " | ".join(
            _money(c[row]) if row in c else "-" for c in cells) + " |")
    lines.append("| **total** | " + " | ".join(f"**{_money(e.total)}**" for e in estimates) + " |")
    return "\n".join(lines)
