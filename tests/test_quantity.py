"""Kubernetes quantities as the API server reads them (apimachinery resource/quantity.go grammar)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from validator.errors import InputError
from validator.quantity import cpu_millis, memory_bytes, parse_quantity


@pytest.mark.parametrize(("text", "value"), [
    ("1", Decimal(1)), (2, Decimal(2)), (0.5, Decimal("0.5")), ("500m", Decimal("0.5")), (".5", Decimal("0.5")),
    ("1.", Decimal(1)), ("512k", Decimal(512000)), ("1Mi", Decimal(1048576)), ("1.5Gi", Decimal(1610612736)),
    ("1e3", Decimal(1000)), ("129e6", Decimal(129000000)), ("1E-2", Decimal("0.01")), ("1E", Decimal(10) ** 18),
    ("2Pi", Decimal(2) ** 51), ("+1Ki", Decimal(1024)), ("1Ei", Decimal(2) ** 60), ("3E", 3 * Decimal(10) ** 18),
])
def test_the_grammar(text: object, value: Decimal) -> None:
    assert parse_quantity(text) == value


@pytest.mark.parametrize("text", ["512K", "1 Gi", "Gi", "", "1.2.3", "1mi", "one", True, "1" * 65, "１２", "1e٣"])
def test_what_the_api_server_refuses_is_refused(text: object) -> None:
    with pytest.raises(InputError, match="not a Kubernetes quantity"):
        parse_quantity(text)


def test_rounding_up_like_milli_value_and_value() -> None:
    assert (cpu_millis("0.0001"), cpu_millis("250m"), cpu_millis(2)) == (1, 250, 2000)
    assert (memory_bytes("0.5"), memory_bytes("64Mi")) == (1, 64 * 1024**2)


@pytest.mark.parametrize("text", ["1e999999", "1e9999999", "-1e99", "9999999999999999999Ei", "1e-999999"])
def test_absurd_magnitudes_are_refused_at_once(text: str) -> None:
    """Rounding 1e999999 to an int took 25 s of CPU per container; decimal's Overflow escaped as an internal error."""
    with pytest.raises(InputError, match="quantity out of range"):
        cpu_millis(text)
