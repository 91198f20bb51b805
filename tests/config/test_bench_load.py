"""bench.load's wrk phases (issue 10): the script wrk runs asks for the fixture's paths with the read token,
and wrk's one-line summary becomes the phase's row, failures included. A stand-in `wrk` on PATH plays wrk."""

from __future__ import annotations

import os
import stat

from bench import load

FIXTURE = {"read_key": "sxt_testkey", "grid_ids": [7, 9], "filtered_url": "/api/v1/grids/?state=accepted"}


def _fake_wrk(folder, summary: str) -> None:
    script = folder / "wrk"
    # Records its arguments and the Lua script it was given, then prints what wrk's done() would.
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$@" > "{folder}/args"\n'
        'while [ "$1" != "-s" ]; do shift; done\n'
        f'cp "$2" "{folder}/script.lua"\n'
        "echo 'Running 20s test'\n"
        f"echo '{summary}'\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


def test_a_wrk_phase_reads_its_summary_into_a_row_with_its_failures(tmp_path, monkeypatch):
    _fake_wrk(tmp_path, "WRK-RESULT 6000 3 20000000 26500 48250")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    phase = next(p for p in load.phases(quick=False, seconds=60) if p.key == "provenance")
    result = load.load_wrk(phase, port=8123, fixture=FIXTURE, out=tmp_path)
    (row,) = result.rows
    assert (row.name, row.requests, row.failures) == ("grids/{id}/provenance/", 6000, 3)
    assert (row.median_ms, row.p95_ms, row.rps) == (26.5, 48.25, 300.0)
    assert result.tool == "wrk" and result.failures and "3 non-2xx" in result.failures[0]
    args = (tmp_path / "args").read_text().split()
    assert "-c8" in args and "-d20s" in args and args[-1] == "http://127.0.0.1:8123/api/v1/grids/7/provenance/"
    lua = (tmp_path / "script.lua").read_text()
    assert '{"/api/v1/grids/7/provenance/", "/api/v1/grids/9/provenance/"}' in lua
    assert 'wrk.headers["Authorization"] = "Token sxt_testkey"' in lua
    assert '%d\\n", summary.requests' in lua  # the newline reaches Lua as an escape, not as a line break


def test_a_wrk_phase_without_a_summary_is_an_error_not_a_zero(tmp_path, monkeypatch):
    _fake_wrk(tmp_path, "unable to connect to 127.0.0.1:8123 Connection refused")
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    phase = next(p for p in load.phases(quick=True, seconds=60) if p.key == "list")
    try:
        load.load_wrk(phase, port=8123, fixture=FIXTURE, out=tmp_path)
    except RuntimeError as error:
        assert "Connection refused" in str(error)
    else:
        raise AssertionError("a run without wrk's summary must fail the phase")
