"""bench.reconstruction's engine bound of a split: the busier process's engine time against the 1-worker work."""

from __future__ import annotations

from bench import reconstruction


def _data(split_engine: list[float]) -> dict:
    layout = [
        ["volume", 0, 32, "bench0@host"],
        ["volume", 32, 64, "bench1@host"],
        ["even", 16, 48, "bench1@host"],
        ["odd", 16, 48, "bench0@host"],
    ]
    return {"split_engine": split_engine, "details": {"2": {"layout": layout}}, "jobs": {"1": [12.0, 13.0, 12.6]}}


def test_the_bound_is_the_direct_work_over_the_busier_process_and_the_jobs_share_of_it():
    (line,) = reconstruction._split_bound(_data([6.0, 6.5, 7.0]), direct=12.0, two=7.2)
    assert "slices 0–31 then the odd half; slices 32–63 then the even half" in line
    assert "6.50 s on the busier process" in line
    assert "at most **1.85×**" in line  # 12.0 / 6.5
    assert "the jobs' 1.75× is 95% of it" in line  # median 12.6 / 7.2 = 1.75, against 1.846


def test_no_bound_without_a_split_to_time():
    data = _data([6.0])
    del data["split_engine"]
    assert reconstruction._split_bound(data, direct=12.0, two=7.2) == []
