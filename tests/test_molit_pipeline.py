"""FetchMonth/CleanMonth with `source = molit` against the recorded-response server."""
from __future__ import annotations

import datetime as dt
import logging

import pandas as pd
import pytest
from luigi.execution_summary import LuigiStatusCode

from aptpipe import config, storage, tasks
from tests.conftest import run_tasks
from tests.molit_server import FakeMolit

KEY = "Pipe+Test/Key+n0tReal/" + "ZyXw98" * 10 + "q+R/s=="
TODAY = dt.date(2025, 6, 20)
GANGNAM = "molit_new_apt_trade_11680_202405_merged_asof_2025-06-20.xml"     # 324 items
YONGSAN = "molit_new_apt_trade_11170_202506_merged_asof_2025-06-20.xml"     # 15 items


@pytest.fixture
def molit(pipeline, monkeypatch):
    monkeypatch.setenv("APTPIPE_SERVICE_KEY", KEY)
    with FakeMolit(KEY) as srv:
        srv.add_month("11680", 202405, GANGNAM)
        srv.add_month("11170", 202405, YONGSAN)   # another month's items: fine for the fetch
        pipeline(aptpipe={"source": "molit", "regions": "11680,11170", "start_month": "202405"},
                 molit={"base_url": srv.base_url, "page_size": "100", "retries": "2"})
        yield srv


def all_text(root) -> str:
    return "\n".join(p.read_bytes().decode("utf-8", "replace") for p in root.rglob("*")
                     if p.is_file())


def test_molit_month_rows_in_equal_rows_out_and_key_never_leaks(molit, tmp_path, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    task = tasks.CleanMonth(deal_ym=202405, today=TODAY)
    assert run_tasks([task]) == LuigiStatusCode.SUCCESS
    cat = config.catalog()
    raw = pd.read_parquet(cat.raw(202405))
    assert len(raw) == 324 + 15
    assert (raw["source"] == "molit").all()
    counts = storage.read_json(storage.manifest_path(cat.clean(202405)))["rows"]
    assert counts["raw"] == 339 == counts["clean"] + counts["quarantined"] + counts["cancelled"]
    assert counts["cancelled"] > 0
    assert not cat.raw_checkpoints(202405).exists()       # removed once the month is whole
    for secret in (KEY, KEY.replace("+", "%2B").replace("/", "%2F")):
        assert secret not in all_text(tmp_path)           # artifacts, manifests, config
        assert secret not in caplog.text
        assert secret not in repr(task.to_str_params()) + repr(task.requires().to_str_params())


def test_quota_stop_keeps_finished_districts_and_next_run_resumes(molit) -> None:
    molit.add_faults("11680", 202405, "gateway22")
    fetch = tasks.FetchMonth(deal_ym=202405, today=TODAY)
    assert run_tasks([fetch]) == LuigiStatusCode.FAILED
    cat = config.catalog()
    assert not cat.raw(202405).exists()                   # nothing that looks complete
    checkpoints = list(cat.raw_checkpoints(202405).rglob("*.parquet"))
    assert [p.name for p in checkpoints] == ["lawd_cd=11170.parquet"]
    served_11170 = molit.hits_for("11170")
    assert run_tasks([fetch]) == LuigiStatusCode.SUCCESS
    assert molit.hits_for("11170") == served_11170        # not fetched again
    assert len(pd.read_parquet(cat.raw(202405))) == 339


def test_missing_key_is_a_clear_failure(molit, monkeypatch, caplog) -> None:
    monkeypatch.delenv("APTPIPE_SERVICE_KEY")
    assert run_tasks([tasks.FetchMonth(deal_ym=202405, today=TODAY)]) == LuigiStatusCode.FAILED
    assert "APTPIPE_SERVICE_KEY" in caplog.text


@pytest.mark.slow
@pytest.mark.parametrize("cap", [1, 2])
def test_resources_cap_concurrent_api_calls_across_workers(molit, pipeline, monkeypatch,
                                                           cap) -> None:
    import threading
    import time

    import tests.molit_server as server

    months_ = (202401, 202402, 202403, 202404)
    for ym in months_:
        molit.add_month("11680", ym, GANGNAM)
        molit.add_month("11170", ym, YONGSAN)
    pipeline(aptpipe={"source": "molit", "regions": "11680,11170", "start_month": "202401"},
             molit={"base_url": molit.base_url, "page_size": "100", "retries": "2"},
             resources={"molit_api": str(cap)})
    in_flight, peak, lock = [0], [0], threading.Lock()
    original = server.FakeMolit._handle

    def counted(self, req):
        with lock:
            in_flight[0] += 1
            peak[0] = max(peak[0], in_flight[0])
        try:
            time.sleep(0.05)   # hold the call open so overlapping workers would show
            return original(self, req)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(server.FakeMolit, "_handle", counted)
    fetches = [tasks.FetchMonth(deal_ym=ym, today=TODAY) for ym in months_]
    assert run_tasks(fetches, workers=4) == LuigiStatusCode.SUCCESS
    assert peak[0] <= cap
    assert len({h.deal_ym for h in molit.hits}) == len(months_)
