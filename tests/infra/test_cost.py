"""Monthly cost estimate: priced from the plan's own resources with the pinned price table."""

import re

import pytest
import yaml

from infra import cost, settings, sizing
from infra.model import derive
from infra.paths import PROJECT_DIR
from infra.tools import mocks, plan, reports
from tests.infra.conftest import GCP_STACKS

README = PROJECT_DIR / "README.md"


def test_dev_total_recomputed_by_hand(plans):
    # europe-west1 from infra/prices.yaml; dev: 1 + 3 e2-highmem-2 Dataproc nodes (derived: the cheapest
    # cluster for its load, tests/infra/test_right_size.py) with 100 GB boot disks, three e2-standard-2
    # service VMs with 20 GB boot disks and 50/50/30 GB data disks, all pd-balanced, one NAT gateway used
    # by those 7 VMs with one address.
    e2_highmem_2 = 2 * 0.02399337 + 16 * 0.00321609
    e2_standard_2 = 2 * 0.02399337 + 8 * 0.00321609
    dataproc_vms = 4 * e2_highmem_2 * 730
    premium = (2 + 3 * 2) * 0.010 * 730
    dataproc_boot = 4 * 100 * 0.10
    service_vms = 3 * e2_standard_2 * 730
    service_boot = 3 * 20 * 0.10
    data_disks = (50 + 50 + 30) * 0.10
    nat = (7 * 0.0014 + 1 * 0.005) * 730
    dns_zone = 0.20
    # Assumed log volumes (infra/cost.py): 0.77 GiB of flow logs per VM or node (7), 6.2 GiB of audit
    # logs, 0.1 GiB of firewall logs, at $0.50 per GiB.
    logs = (7 * 0.77 + 6.2 + 0.1) * 0.50
    by_hand = (dataproc_vms + premium + dataproc_boot + service_vms + service_boot + data_disks + nat
               + dns_zone + logs)
    assert round(by_hand, 2) == 586.06
    assert cost.estimate(plans["dev"]).total == pytest.approx(by_hand, rel=1e-9)


def test_dev_items_name_what_was_priced(plans):
    items = {i.item: i for i in cost.estimate(plans["dev"]).items}
    assert items["Dataproc workers"].detail == "3 x e2-highmem-2"
    assert items["Dataproc workers"].monthly == pytest.approx(3 * (2 * 0.02399337 + 16 * 0.00321609) * 730)
    assert items["Dataproc premium"].detail == "8 vCPU"
    assert items["kafka-data disk"].detail == "50 GB pd-balanced"
    assert items["Cloud NAT"].detail == "1 gateway x 7 VMs + 1 IP"


def test_the_estimate_follows_the_settings_the_program_deploys():
    config = mocks.stack_config("dev")
    config["hydrostream:dataproc"] = {**config["hydrostream:dataproc"], "master": "e2-standard-4",
                                      "worker": "e2-standard-4", "workers": 3, "boot_disk_gb": 200}
    config["hydrostream:kafka"] = {"machine": "n2-standard-4", "disk_gb": 80}
    items = {i.item: i for i in cost.estimate(mocks.run_plan("dev", config)).items}
    assert items["Dataproc workers"].monthly == pytest.approx(3 * (4 * 0.02399337 + 16 * 0.00321609) * 730)
    assert items["Dataproc boot disks"].monthly == pytest.approx(4 * 200 * 0.10)
    assert items["Dataproc premium"].monthly == pytest.approx(16 * 0.010 * 730)
    assert items["kafka VM"].monthly == pytest.approx((4 * 0.034773 + 16 * 0.004661) * 730)
    assert items["kafka-data disk"].monthly == pytest.approx(80 * 0.10)


def test_the_readme_cost_table_is_what_the_code_computes(plans):
    text = README.read_text()
    section = re.search(r"^## Cost\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL)
    assert section, "README has no '## Cost' section"
    table = "\n".join(line for line in section.group(1).splitlines() if line.startswith("|"))
    assert table == cost.readme_table([cost.estimate(plans[stack]) for stack in GCP_STACKS])


def test_the_plan_prints_capacity_and_cost_on_stderr(capsys):
    assert plan.main(["dev"]) == 0
    printed = capsys.readouterr()
    assert "cost (europe-west1, USD per month of 730 h" in printed.err
    assert "  total" in printed.err and "586.06" in printed.err
    assert "1 executors x 2 cores x 4000 readings/s per core = 8000 readings/s" in printed.err
    assert "cost (" not in printed.out and "capacity:" not in printed.out


def test_the_local_stack_costs_nothing_in_the_cloud():
    assert cost.report(None) == ["cost: none in the cloud (local Docker target)"]


def test_the_derived_family_rates_reproduce_other_listed_machine_prices():
    # Hourly europe-west1 prices of machine types that were not used to derive the rates (same source).
    prices = cost.load_prices()
    listed = {("e2-standard-32", 32, 128): 1.17944736, ("e2-highmem-16", 16, 128): 0.79555344,
              ("n2-highcpu-64", 64, 64): 2.523776, ("n2-highmem-128", 128, 864): 8.478048,
              ("n2d-highcpu-224", 224, 224): 7.684992}
    for (name, vcpus, gb), hourly in listed.items():
        machine = sizing.MachineShape(name, vcpus, gb * 1024)
        assert prices.machine_hour("europe-west1", machine) == pytest.approx(hourly, abs=1e-6), name


def test_every_catalog_family_is_priced_in_every_stack_region():
    prices = cost.load_prices()
    regions = {settings.parse_settings(s, mocks.stack_config(s)).gcp.region for s in GCP_STACKS}
    for region in regions:
        for machine in sizing.SHAPES.values():
            assert prices.machine_hour(region, machine) > 0


def test_an_unpriced_region_is_refused_naming_it_and_the_priced_ones(plans):
    with pytest.raises(cost.PriceError, match=r"no prices for region 'us-central1'.*priced: europe-west1"):
        cost.estimate_resources("dev", "us-central1", plans["dev"].resources)


def test_the_plan_says_why_it_has_no_estimate_for_an_unpriced_region(plans):
    config = {**mocks.stack_config("dev"), "gcp:region": "us-central1", "gcp:zone": "us-central1-a"}
    # Unpinned, the cluster cannot be chosen without prices: refused, naming what to do.
    with pytest.raises(settings.SettingsError, match=r"no prices for region 'us-central1'.*pin "
                                                      r"hydrostream:dataproc.master.*or price the region"):
        derive(settings.parse_settings("dev", config))
    config["hydrostream:dataproc"] = {"master": "e2-standard-4", "worker": "e2-standard-4", "workers": 2}
    configured = settings.parse_settings("dev", config)
    elsewhere = mocks.Plan("dev", plans["dev"].resources, {}, frozenset(), configured, derive(configured))
    lines = reports.capacity_and_cost(elsewhere)
    assert lines[-1].startswith("cost: not estimated: no prices for region 'us-central1'")
    assert lines[0] == "capacity:"


def test_nat_is_per_vm_up_to_32_then_capped():
    nat = cost.load_prices().nat
    assert nat.gateway_hour(6) == pytest.approx(6 * 0.0014 + 0.005)
    assert nat.gateway_hour(32) == pytest.approx(32 * 0.0014 + 0.005)
    assert nat.gateway_hour(33) == pytest.approx(0.044 + 0.005)


def test_a_bad_figure_in_the_price_table_is_refused_naming_it(tmp_path):
    table = yaml.safe_load(cost.PRICES_FILE.read_text())
    table["regions"]["europe-west1"]["disks_per_gb_month"]["pd-balanced"] = -0.1
    path = tmp_path / "prices.yaml"
    path.write_text(yaml.safe_dump(table))
    named = r"regions\.europe-west1\.disks_per_gb_month\.pd-balanced = -0\.1"
    with pytest.raises(cost.PriceError, match=named):
        cost.load_prices(path)


def test_the_price_table_records_its_sources_and_date():
    prices = cost.load_prices()
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", prices.recorded)
    assert prices.hours_per_month == 730
    for key in ("machines", "disks", "dataproc", "nat"):
        assert prices.sources[key].startswith("https://cloud.google.com/")
