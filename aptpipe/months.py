"""Month arithmetic on YYYYMM integers (the pipeline's partition key)."""
from __future__ import annotations

import datetime as dt


def parse_ym(value: str | int) -> int:
    """'202406', '2024-06' or 202406 -> 202406; raises ValueError on anything else."""
    text = str(value).strip().replace("-", "")
    if len(text) != 6 or not text.isdigit() or not 1 <= int(text[4:]) <= 12:
        raise ValueError(f"not a YYYYMM month: {value!r}")
    return int(text)


def ym_of(day: dt.date) -> int:
    return day.year * 100 + day.month


def add_months(ym: int, n: int) -> int:
    index = (ym // 100) * 12 + (ym % 100 - 1) + n
    return (index // 12) * 100 + index % 12 + 1


def month_range(start: int, end: int) -> list[int]:
    """Inclusive list of months from `start` to `end` (empty if start > end)."""
    out: list[int] = []
    ym = start
    while ym <= end:
        out.append(ym)
        ym = add_months(ym, 1)
    return out


def months_between(a: int, b: int) -> int:
    """Number of months from a to b (b - a)."""
    return (b // 100 - a // 100) * 12 + (b % 100 - a % 100)


def first_day(ym: int) -> dt.date:
    return dt.date(ym // 100, ym % 100, 1)


def last_day(ym: int) -> dt.date:
    return first_day(add_months(ym, 1)) - dt.timedelta(days=1)
