"""Vitrification runs as PDBx/mmCIF fragments: `_em_vitrification` (plunge freezing) and
`_em_high_pressure_freezing` (HPF), ready to paste into a deposition or read with gemmi/pdbx.

The items come from each run's `mmcif()` (temperatures in kelvin, controlled instrument and cryogen
names); this module only writes them as CIF, quoting values by the CIF 1.1 rules. Unknown values are `?`.
"""

from __future__ import annotations

import re

from vitrification.models import PlungeRun, VitrificationRun

_RESERVED = re.compile(r"^(data_|loop_|save_|global_|stop_)", re.IGNORECASE)
_BARE = re.compile(r"^[^\s'\"#$_\[\];][^\s]*$")


def cif_value(value) -> str:
    """One value as CIF text: `?` for unknown, bare when safe, quoted, or a ;-delimited text field."""
    if value is None or value == "":
        return "?"
    if isinstance(value, bool):
        return "YES" if value else "NO"
    if isinstance(value, int | float):
        return f"{value:g}" if isinstance(value, float) else str(value)
    text = str(value)
    if "\n" in text or ("' " in text and '" ' in text):
        return f"\n;{text}\n;"
    if _BARE.match(text) and not _RESERVED.match(text) and text not in ("?", "."):
        return text
    if "' " not in text and not text.endswith("'"):
        return f"'{text}'"
    return f'"{text}"'


def category(run: VitrificationRun) -> str:
    return "em_vitrification" if isinstance(run, PlungeRun) else "em_high_pressure_freezing"


def run_items(run: VitrificationRun, *, entry_id: str = "1", specimen_id: str = "1") -> list[tuple[str, object]]:
    """(item, value) pairs of the run's category, in dictionary order (id first)."""
    items: list[tuple[str, object]] = [("id", entry_id)]
    if isinstance(run, PlungeRun):
        items.append(("specimen_id", specimen_id))
    items += list(run.mmcif().items())
    return items


def run_fragment(run: VitrificationRun) -> str:
    """One run as a complete CIF data block (`data_sxt_lims_<kind>_<id>`) with its category."""
    kind = "plunge_run" if isinstance(run, PlungeRun) else "hpf_run"
    name = category(run)
    items = run_items(run)
    width = max(len(f"_{name}.{item}") for item, _ in items) + 2
    lines = [
        f"data_sxt_lims_{kind}_{run.pk}",
        f"# {run.label} {run.pk}: {run.lab} · {run.instrument.name} · {run.performed_at:%Y-%m-%d %H:%M} (SXT LIMS)",
        "#",
    ]
    lines += [f"_{name}.{item}".ljust(width) + cif_value(value) for item, value in items]
    lines.append("#")
    return "\n".join(lines) + "\n"
