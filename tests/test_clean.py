"""clean_month on small hand-made frames in the API's raw shape."""
from __future__ import annotations

import pandas as pd

from aptpipe import clean, schema


def raw(**fields: list[str]) -> pd.DataFrame:
    n = len(next(iter(fields.values())))
    base = {"sggCd": ["11680"] * n, "umdNm": ["개포동"] * n, "aptNm": ["개포자이"] * n,
            "jibun": ["12"] * n, "excluUseAr": ["84.9984"] * n, "dealYear": ["2024"] * n,
            "dealMonth": ["6"] * n, "dealDay": ["3"] * n, "dealAmount": ["255,000"] * n,
            "floor": ["7"] * n, "buildYear": ["2019"] * n, "cdealType": [" "] * n,
            "cdealDay": [" "] * n, "lawd_cd": ["11680"] * n, "source": ["test"] * n}
    base.update(fields)
    return schema.conform_raw(pd.DataFrame(base))


def test_types_and_api_formats() -> None:
    result = clean.clean_month(raw(dealAmount=["    82,500", "1,125,000"],
                                   aptSeq=[" ", "11680-77"], floor=["-1", " "],
                                   rgstDate=["24.07.30", " "]), 202406)
    out = result.clean
    assert list(out.columns) == list(schema.CANONICAL_COLUMNS)
    assert out["price_manwon"].tolist() == [82500, 1125000]
    assert out["floor"].tolist()[0] == -1 and pd.isna(out["floor"].tolist()[1])
    assert out["complex_key"].tolist() == ["11680|개포동|12|개포자이", "11680-77"]
    assert out["registered_date"].iloc[0] == pd.Timestamp("2024-07-30")
    assert out["sigungu"].tolist() == ["강남구", "강남구"]
    assert out["deal_date"].iloc[0] == pd.Timestamp("2024-06-03")


def test_day_buckets_become_middle_days() -> None:
    result = clean.clean_month(raw(dealDay=["1~10", "11~20", "21~30", "21~31"],
                                   dealMonth=["6"] * 4), 202406)
    assert result.clean["deal_date"].dt.day.tolist() == [5, 15, 25, 25]
    assert result.clean["deal_day_bucketed"].all()


def test_every_row_lands_in_exactly_one_place_with_a_reason() -> None:
    frame = raw(dealAmount=["10,000", " ", "0", "50,000", "50,000", "50,000", "50,000"],
                excluUseAr=["59.9", "59.9", "59.9", " ", "59.9", "59.9", "59.9"],
                dealMonth=["6", "6", "6", "6", "5", "6", "6"],
                dealDay=["3", "3", "3", "3", "3", "32", "3"],
                cdealType=[" ", " ", " ", " ", " ", " ", "O"],
                cdealDay=[" ", " ", " ", " ", " ", " ", "24.06.20"])
    result = clean.clean_month(frame, 202406)
    assert result.n_raw == 7
    assert result.n_clean + result.n_quarantined + result.n_cancelled == 7
    assert result.n_clean == 1 and result.n_cancelled == 1
    assert result.quarantine["reason"].tolist() == [
        "invalid price", "invalid price", "invalid area",
        "contract month differs from partition", "invalid contract date"]
    assert list(result.quarantine.columns) == list(schema.QUARANTINE_COLUMNS)


def test_implausible_price_and_unknown_district_are_quarantined() -> None:
    result = clean.clean_month(raw(dealAmount=["1", "50,000"], sggCd=["11680", " "],
                                   lawd_cd=["11680", " "]), 202406)
    assert result.quarantine["reason"].tolist() == ["implausible price per m2",
                                                    "missing district code"]


def test_input_frame_is_not_mutated() -> None:
    frame = raw(dealAmount=["1,000"])
    copy = frame.copy()
    clean.clean_month(frame, 202406)
    pd.testing.assert_frame_equal(frame, copy)
