"""studies.units: byte budgets and counts as users write them."""

from __future__ import annotations

import pytest

from nas.errors import ConfigError
from studies.units import format_bytes, format_count, parse_bytes, parse_count


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0.25MiB", 262_144),
        ("0.25 MiB", 262_144),
        ("256KiB", 262_144),
        ("256 kib", 262_144),
        ("262144", 262_144),
        ("262_144", 262_144),
        ("262,144 B", 262_144),
        ("3.75MiB", 3_932_160),
        ("1MB", 1_000_000),
        ("2 kB", 2_000),
        ("1GiB", 2**30),
        (4096, 4096),
        (0.5e3, 500),
    ],
)
def test_parse_bytes(text: str, expected: int) -> None:
    assert parse_bytes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("18G", 18_000_000_000),
        ("18 G", 18_000_000_000),
        ("17.52G", 17_520_000_000),
        ("250k", 250_000),
        ("250K", 250_000),
        ("3M", 3_000_000),
        ("1.5e9", 1_500_000_000),
        ("29159715", 29_159_715),
        ("2T", 2 * 10**12),
        (1000, 1000),
    ],
)
def test_parse_count(text: str, expected: int) -> None:
    assert parse_count(text) == expected


@pytest.mark.parametrize(
    ("func", "text", "needle"),
    [
        (parse_bytes, "0.25M", "ambiguous unit 'M'; write MiB"),
        (parse_bytes, "12 parsecs", "unknown byte unit 'parsecs'"),
        (parse_bytes, "lots", "is not a number"),
        (parse_bytes, "-1MiB", ">= 0"),
        (parse_bytes, "nan", "not a number"),
        (parse_count, "18GB", "unknown unit 'GB'"),
        (parse_count, "", "not a number"),
        (parse_count, True, "not a number"),
    ],
)
def test_bad_input_names_the_field(func, text, needle) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError) as info:
        func(text, field="--max-m-sc")
    message = str(info.value)
    assert message.startswith("--max-m-sc: ")
    assert needle in message
    assert "\n" not in message


def test_format_round_trips_through_parse() -> None:
    assert format_bytes(262_144) == "256 KiB"
    assert format_bytes(3_932_160) == "3.75 MiB"
    assert format_bytes(100) == "100 B"
    assert parse_bytes(format_bytes(3_932_160)) == 3_932_160
    assert format_count(16_065_000_000) == "16.1 G"
    assert format_count(29_159_715) == "29.2 M"
    assert format_count(12) == "12"
