"""``swarm update --cert-expiry DURATION``'s parser (`cluster.cli.durations`)."""

from __future__ import annotations

import datetime

import pytest

from cluster.cli.durations import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400), ("2h", 7200), ("1h30m", 5400), ("2160h0m0s", 90 * 86400), ("45s", 45)],
)
def test_durations_as_docker_and_people_write_them(text, seconds) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "90", "d", "2x", "h2", "1h 30m", "-1h", "2h-"])
def test_anything_else_is_a_clear_error(text) -> None:
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


def test_printed_the_way_docker_prints_them() -> None:
    assert format_duration(datetime.timedelta(days=90)) == "2160h0m0s"
    assert format_duration(parse_duration("1h30m15s")) == "1h30m15s"
