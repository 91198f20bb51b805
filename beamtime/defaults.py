"""Reference data shared by the data migration, the demo loader and the services."""

from __future__ import annotations

# (short name, full name, city, country, website, [(beamline name, code, capacity, shift h, eV, description)])
FACILITIES = [
    (
        "HZB",
        "Helmholtz-Zentrum Berlin, BESSY II",
        "Berlin",
        "Germany",
        "https://www.helmholtz-berlin.de",
        [("U41 TXM", "hzb-u41-txm", 6, 8, 510.0, "BESSY II U41-PGM1 full-field transmission X-ray microscope")],
    ),
    (
        "ALBA",
        "ALBA Synchrotron",
        "Cerdanyola del Vallès",
        "Spain",
        "https://www.cells.es",
        [("MISTRAL", "alba-mistral", 5, 8, 520.0, "MISTRAL full-field cryo soft X-ray tomography beamline")],
    ),
    (
        "Diamond",
        "Diamond Light Source",
        "Didcot",
        "United Kingdom",
        "https://www.diamond.ac.uk",
        [("B24", "diamond-b24", 6, 8, 500.0, "B24 cryo transmission X-ray microscope (full-field cryo-SXT)")],
    ),
]

# The default gate: (metric, operator, threshold).
DEFAULT_RULES = [
    ("post_vitrification_check", "eq", 1.0),
    ("ice_quality_class", "le", 2.0),
    ("intact_fraction", "ge", 0.5),
    ("target_count", "ge", 3.0),
    ("qc_accepted", "eq", 1.0),
]
