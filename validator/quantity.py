"""Kubernetes resource quantities ("500m", "1.5Gi", "129e6", "2k"), read as the API server reads them.

The grammar is apimachinery's (resource/quantity.go): a signed decimal number, then a binary suffix
(Ki Mi Gi Ti Pi Ei), a decimal suffix (m, k, M, G, T, P, E: lower-case k only) or an exponent (e3, E-2).
Anything else is refused, as the API server refuses it, so a typo such as "512K" is reported instead of guessed.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from typing import Any

from validator.errors import InputError

# [0-9], not \d: Go's parser takes ASCII digits only, and "１２" must not pass
_QUANTITY = re.compile(r"([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))(Ki|Mi|Gi|Ti|Pi|Ei|[eE][+-]?[0-9]+|[mkMGTPE])?")
# Far beyond any real request or node (1e30 bytes is a million yottabytes), and small enough that rounding the
# value to an int stays cheap: "1e999999" would otherwise cost seconds of CPU per container.
MAX_MAGNITUDE = Decimal("1e30")
_SUFFIX = {
    "Ki": Decimal(2) ** 10, "Mi": Decimal(2) ** 20, "Gi": Decimal(2) ** 30, "Ti": Decimal(2) ** 40,
    "Pi": Decimal(2) ** 50, "Ei": Decimal(2) ** 60,
    "m": Decimal("1e-3"), "k": Decimal("1e3"), "M": Decimal("1e6"), "G": Decimal("1e9"), "T": Decimal("1e12"),
    "P": Decimal("1e15"), "E": Decimal("1e18"),
}


def parse_quantity(value: Any) -> Decimal:
    """The quantity's value in base units (cores, bytes); InputError for what the API server would refuse."""
    text = str(value).strip() if not isinstance(value, bool) else ""
    match = _QUANTITY.fullmatch(text)
    if not match or len(text) > 64:
        raise InputError(f"not a Kubernetes quantity: {value!r}")
    number, suffix = match.groups()
    try:
        if suffix and suffix not in _SUFFIX:  # an exponent; "Ei" and "E" are suffixes
            exponent = int(suffix[1:])
            if abs(exponent) > 60:
                raise InputError(f"quantity out of range: {value!r}")
            result = Decimal(number) * Decimal(10) ** exponent
        else:
            result = Decimal(number) * _SUFFIX.get(suffix or "", Decimal(1))
    except ArithmeticError:  # decimal's InvalidOperation and Overflow
        raise InputError(f"not a Kubernetes quantity: {value!r}") from None
    if abs(result) > MAX_MAGNITUDE:
        raise InputError(f"quantity out of range: {value!r}")
    return result


def cpu_millis(value: Any) -> int:
    """CPU in millicores, rounded up as the scheduler's MilliValue() does."""
    return math.ceil(parse_quantity(value) * 1000)


def memory_bytes(value: Any) -> int:
    """Memory in bytes, rounded up as Value() does."""
    return math.ceil(parse_quantity(value))
