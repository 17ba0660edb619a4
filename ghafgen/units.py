"""Sizes as profiles write them ("512M", "4G") and as ghafgen computes with them."""

from __future__ import annotations

import re

_SIZE = re.compile(r"^([1-9][0-9]{0,15})([KMGT]?)$")
_FACTOR = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}


def parse_size(text: str) -> int | None:
    """Bytes in `text` (binary units, K/M/G/T), or None if it is not a size."""
    m = _SIZE.fullmatch(text)
    if m is None:
        return None
    return int(m.group(1)) * _FACTOR[m.group(2)]


def format_size(n: int) -> str:
    """The shortest exact binary-unit spelling of `n` bytes."""
    for unit in ("T", "G", "M", "K"):
        if n and n % _FACTOR[unit] == 0:
            return f"{n // _FACTOR[unit]}{unit}"
    return str(n)


def mib(n: int) -> int:
    return n // (1 << 20)
