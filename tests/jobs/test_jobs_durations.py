"""The one duration grammar the settings, the jobs and the deploy's wait share."""

import pytest
from hydrostream_jobs import durations


@pytest.mark.parametrize(("text", "ms", "interval"), [
    ("500ms", 500, "500 milliseconds"), ("30s", 30_000, "30 seconds"), ("5m", 300_000, "5 minutes"),
    ("1h", 3_600_000, "1 hours"), ("2d", 172_800_000, "2 days"),
])
def test_each_unit(text, ms, interval):
    assert durations.milliseconds(text) == ms
    assert durations.spark_interval(text) == interval
    assert durations.interval_ms(interval) == ms
    assert durations.check(text) == text


@pytest.mark.parametrize("text", ["", "5", "5 m", "5min", "-5m", "1.5h", "5M", "m"])
def test_what_is_not_a_duration_is_named(text):
    with pytest.raises(durations.DurationError, match=f"{text!r} is not a positive duration such as 500ms"):
        durations.milliseconds(text)


def test_zero_is_refused_as_not_positive():
    with pytest.raises(durations.DurationError, match=r"'0s' is zero: expected a positive duration"):
        durations.check("0s")


@pytest.mark.parametrize(("ms", "text"), [(1, "1ms"), (1_017, "1017ms"), (60_000, "1m"), (90_000, "90s"),
                                         (86_400_000, "1d"), (5_400_000, "90m")])
def test_milliseconds_back_to_text_in_the_largest_whole_unit(ms, text):
    assert durations.text(ms) == text
    assert durations.milliseconds(text) == ms
