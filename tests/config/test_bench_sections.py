"""`make bench` and `bench.run --only` rewrite docs/benchmarks.md: a rerun section is replaced, every other
one (a module's not rerun, or one written by hand) is kept as it was."""

from __future__ import annotations

import sys
import types

from bench import run as bench_run

EARLIER = """# Benchmarks

<!-- section: bench.engine -->
## Engine
old engine numbers
<!-- end: bench.engine -->

<!-- section: bench.fake -->
## Fake
old fake numbers
<!-- end: bench.fake -->

<!-- section: issue 13, before/after (written by hand) -->
## Before/after
measured by hand
<!-- end: issue 13 -->
"""


def test_a_rerun_replaces_its_section_and_keeps_the_others_and_the_hand_written_ones(tmp_path, monkeypatch):
    fake = types.ModuleType("bench.fake")
    fake.run = lambda quick=False: "## Fake\nnew fake numbers"
    monkeypatch.setitem(sys.modules, "bench.fake", fake)
    out = tmp_path / "benchmarks.md"
    out.write_text(EARLIER)
    assert bench_run.main(["--only", "bench.fake", "-o", str(out)]) == 0
    text = out.read_text()
    assert "new fake numbers" in text and "old fake numbers" not in text
    assert "old engine numbers" in text
    assert "measured by hand" in text and text.count("<!-- section: issue 13") == 1


def test_a_partial_rerun_keeps_the_whole_runs_date_and_names_what_it_reran(tmp_path, monkeypatch):
    fake = types.ModuleType("bench.fake")
    fake.run = lambda quick=False: "## Fake\nnew fake numbers"
    monkeypatch.setitem(sys.modules, "bench.fake", fake)
    out = tmp_path / "benchmarks.md"
    out.write_text(EARLIER.replace("# Benchmarks\n", "# Benchmarks\n\n- Date: 2026-12-01 22:03 UTC\n- Machine: x\n"))
    assert bench_run.main(["--only", "bench.fake", "-o", str(out)]) == 0
    first = out.read_text()
    assert "- Date: 2026-12-01 22:03 UTC (since then rerun alone: bench.fake, " in first
    # a second partial rerun still dates the file by the whole run, not by the first partial one
    assert bench_run.main(["--only", "bench.fake", "-o", str(out)]) == 0
    second = out.read_text()
    assert second.count("2026-12-01 22:03 UTC") == 1 and second.count("since then rerun alone") == 1
