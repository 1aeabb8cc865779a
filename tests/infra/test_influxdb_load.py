"""InfluxDB's machine against the load: the band of InfluxData's single-node guidelines, computed by hand."""

import pytest

from infra import influxdb_load, model, sizing
from infra.settings import SettingsError, parse_settings
from infra.tools import mocks


def test_prods_load_by_hand_is_the_moderate_band_and_its_machine_fits():
    # prod: 2,000 readings/s of 7 values; 12 farms x 4 zones of window statistics (3 x 7 + 2 = 23 fields)
    # every 60 s slide. Series: 12 farms x 20 devices x 7 fields, and 12 x 4 zones x 23 statistics.
    load = model.derive(parse_settings("prod", mocks.stack_config("prod"))).gcp.influxdb_load
    assert load.writes == pytest.approx(2000 * 7 + 12 * 4 * 23 / 60)            # 14,018.4
    assert load.series == 12 * 20 * 7 + 12 * 4 * 23                             # 2,784
    assert load.band.name == "moderate" and load.band.memory_gb == (8, 32)
    assert load.machine.name == "n2-highmem-4" and load.warnings() == []
    assert "14,018 field writes/s, 2,784 series: the moderate band" in "\n".join(load.report())


@pytest.mark.parametrize(("writes", "series", "band"), [
    (4_999, 99_999, "low"), (5_000, 10, "moderate"), (10, 100_000, "moderate"),
    (249_999, 999_999, "moderate"), (250_000, 10, "high"), (749_999, 9_999_999, "high"),
])
def test_the_band_is_the_lowest_whose_bounds_hold_both_figures(writes, series, band):
    assert influxdb_load.band(writes, series).name == band


def test_beyond_one_node_is_refused_naming_the_limit():
    with pytest.raises(sizing.SizingError, match=r"750,000 writes/s, 10,000,000 series"):
        influxdb_load.band(750_000, 10)
    with pytest.raises(sizing.SizingError, match="exceed one InfluxDB node"):
        influxdb_load.band(10, 10_000_000)


def test_a_machine_below_its_band_or_far_above_it_is_warned_about():
    moderate = influxdb_load.InfluxDbLoad(sizing.SHAPES["n2-standard-2"], 14_018, 2_784,
                                          influxdb_load.band(14_018, 2_784))
    (cores,) = moderate.warnings()   # 2 vCPU of 4; its 8 GB is the band's least
    assert "n2-standard-2 has 2 vCPU, the moderate band asks for 4 or more" in cores
    low = influxdb_load.InfluxDbLoad(sizing.SHAPES["n2-highmem-4"], 3_505, 696,
                                     influxdb_load.band(3_505, 696))
    (memory,) = low.warnings()       # 32 GB against the low band's 4 GB, more than twice
    assert "more than 2x the low band's 4 GB" in memory
    assert "warning:" in "\n".join(low.report())


def test_a_stack_whose_writes_exceed_one_node_is_refused_naming_the_keys():
    config = mocks.stack_config("dev")
    config["hydrostream:jobs"] = {**config.get("hydrostream:jobs", {}), "rate": 110_000}
    settings = parse_settings("dev", config)
    with pytest.raises(SettingsError, match=r"hydrostream:jobs rate 110000.*exceed one InfluxDB node"):
        model._influxdb_load(settings)
