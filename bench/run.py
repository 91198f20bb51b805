"""`make bench`: run every benchmark section and write docs/benchmarks.md.

Each section is a module in this package with ``run(quick: bool = False) -> str`` returning
Markdown. Sections run in one process, one after another, so ratios compare peers measured
under the same load. ``--only`` reruns some sections and replaces just those in the file (each
section sits between ``<!-- section: NAME -->`` markers), keeping the others as they were.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import re
import sys
import time
from pathlib import Path

SECTIONS: list[str] = [
    "bench.engine",
    "bench.focus",
    "bench.peers",
    "bench.characterization",
    "bench.reconstruction",
    "bench.api",
    "bench.dashboard",
    "bench.load",
]

MARK = "<!-- section: {} -->"
END = "<!-- end: {} -->"

OUTPUT = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def read_sections(text: str) -> dict[str, str]:
    """The marked sections of an earlier docs/benchmarks.md, by name: a module's, or a hand-written one's
    (any text as its name, closed by the next end marker whatever that says)."""
    found: dict[str, str] = {}
    for match in re.finditer(r"<!-- section: (.+?) -->\n.*?<!-- end: [^\n]*?-->\n?", text, flags=re.S):
        found[match.group(1)] = match.group(0)
    return found


def machine_summary() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass

    return f"{cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller problems, for a smoke run")
    parser.add_argument("--only", nargs="*", help="section modules to run (default: all)")
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)

    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    earlier = args.output.read_text() if args.output.is_file() else ""
    previous = read_sections(earlier)
    dated = f"- Date: {started}\n"
    full_run = re.search(r"^- Date: ([^\n(]+?)\s*(?:\(|$)", earlier, flags=re.M)
    if args.only and full_run:
        # a partial rerun: the header keeps the whole run's date (each section carries its own stamp)
        dated = f"- Date: {full_run.group(1)} (since then rerun alone: {', '.join(args.only)}, {started})\n"
    parts = [
        "# Benchmarks\n",
        "Written by `make bench` (`python -m bench.run"
        + (" --quick" if args.quick else "")
        + "`); numbers are medians of repeated runs, peers measured in the same process.\n",
        f"{dated}- Machine: {machine_summary()}\n",
    ]
    load = os.getloadavg()[0]
    for name in SECTIONS + [n for n in args.only or [] if n not in SECTIONS]:
        if args.only and name not in args.only:
            if name in previous:
                parts.append(previous[name])
            continue
        module = importlib.import_module(name)
        print(f"== {name}", file=sys.stderr, flush=True)
        body = module.run(quick=args.quick)
        stamp = f"_Section run {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {load:.2f} at its start._\n"
        parts.append(f"{MARK.format(name)}\n{body.rstrip()}\n\n{stamp}{END.format(name)}\n")
    # Sections written by hand (before/after comparisons no module reruns) are kept as they are.
    parts += [text for name, text in previous.items() if name not in SECTIONS and name not in (args.only or [])]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(parts))
    print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
