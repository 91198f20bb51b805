"""Exports for other tools: datasets and volumes as RO-Crates (read back with the `rocrate` library), and
tilt-series metadata in the vocabulary of public cryo-ET/SXT portals."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tracemalloc
import zipfile

import pytest
from rocrate.rocrate import ROCrate

from beamtime import quality
from beamtime import services as beamtime_services
from characterization import services as characterization_services
from characterization.models import CheckStage
from characterization.selectors import GridQualityFacts
from grids import services as grid_services
from reconstruction import exports
from reconstruction.engine._version import __version__ as ENGINE_VERSION
from reconstruction.models import Dataset, Volume
from tests.beamtime.factories import GOOD_FACTS, ProposalFactory, beamline, schedule
from tests.characterization.factories import make_check
from tests.factories import CellLineFactory, MembershipFactory, make_grids
from tests.vitrification.factories import PLUNGE_PARAMS, PlungerFactory
from vitrification import services as vitrification_services


@pytest.fixture
def prepared(lab, member, monkeypatch):
    """A grid seeded, plunge-frozen, checked and accepted by a reviewer, then shipped to a session: (session, grid)."""
    monkeypatch.setattr(quality, "characterization_facts", lambda grid: GridQualityFacts(grid_id=grid.pk, **GOOD_FACTS))
    reviewer = MembershipFactory(lab=lab, role="qc_reviewer").user
    grid = make_grids(lab=lab, user=member, count=1)[0]
    grid_services.seeding_record(grids=[grid], cell_line=CellLineFactory(lab=lab, name="HeLa"), by=member, passage=12)
    vitrification_services.plunge_run_record(
        grids=[grid], instrument=PlungerFactory(lab=lab), by=member, **PLUNGE_PARAMS
    )
    check = make_check(lab=lab, user=member, grid=grid, stage=CheckStage.POST_VITRIFICATION, ice_quality_class=1)
    characterization_services.qc_decide(lm_check=check, decision="accepted", reasons="even ice", by=reviewer)
    session = schedule(proposal=ProposalFactory(lab=lab, created_by=member, facility=beamline().facility), by=member)
    beamtime_services.sample_sheet_add(session=session, grid=grid, by=member)
    shipment = beamtime_services.shipment_create(session=session, dewar="CX-1", courier="courier", by=member)
    beamtime_services.shipment_transition(shipment=shipment, to_status="shipped", by=member)
    grid.refresh_from_db()
    return session, grid


def _add_dataset(api, session, grid, path, **extra):
    with open(path, "rb") as handle, open(path.with_suffix(".tlt"), "rb") as tlt:
        response = api.post(
            "/api/v1/datasets/",
            {"session": session.pk, "grid": grid.pk, "file": handle, "angles": tlt, "photon_energy_ev": 520,
             "exposure_s": 1.5, "zone_plate_outer_zone_nm": 25, "zone_plate_diameter_um": 60, **extra},
            format="multipart",
        )  # fmt: skip
    assert response.status_code == 201, response.content
    return Dataset.objects.get(pk=response.json()["id"])


@pytest.fixture
def reconstructed(api, prepared, mrc_series):
    """A dataset of the prepared grid, accepted: its default job ran (eagerly) and made a volume."""
    session, grid = prepared
    dataset = _add_dataset(api, session, grid, mrc_series[0])
    accepted = api.post(f"/api/v1/datasets/{dataset.pk}/accept/")
    assert accepted.status_code == 201
    return dataset, Volume.objects.get(job_id=accepted.json()["id"])  # the recipe's final job, after its preview


def _read_crate(response, tmp_path, name="crate.zip"):
    """The streamed zip on disk, every member's bytes, the JSON-LD graph by @id, and rocrate's reading."""
    assert response.status_code == 200, getattr(response, "content", b"")[:500]
    assert response["Content-Type"] == "application/zip" and response.streaming
    assert (
        response["Content-Disposition"].startswith("attachment") and "ro-crate.zip" in response["Content-Disposition"]
    )
    path = tmp_path / name
    path.write_bytes(b"".join(response.streaming_content))
    with zipfile.ZipFile(path) as archive:
        assert archive.testzip() is None  # every CRC matches
        members = {n: archive.read(n) for n in archive.namelist()}
    document = json.loads(members["ro-crate-metadata.json"])
    graph = {e["@id"]: e for e in document["@graph"]}
    return members, graph, ROCrate(str(path))


def _values(graph, entity) -> dict:
    """The PropertyValues an entity refers to (additionalProperty, object or result), by name."""
    refs = []
    for key in ("additionalProperty", "object", "result"):
        value = entity.get(key, [])
        refs += value if isinstance(value, list) else [value]
    found = [graph[r["@id"]] for r in refs if r["@id"] in graph]
    return {e["name"]: e for e in found if e.get("@type") == "PropertyValue"}


def test_a_dataset_exports_as_an_ro_crate_that_rocrate_reads_back(api, reconstructed, member, tmp_path):
    dataset, volume = reconstructed
    members, graph, crate = _read_crate(api.get(f"/api/v1/datasets/{dataset.pk}/ro-crate/"), tmp_path)
    # rocrate reads it: the root, its licence, and every file as a data entity
    assert crate.root_dataset["license"].id == exports.DEFAULT_LICENSE
    assert dataset.name in crate.name and dataset.grid.barcode in crate.name
    files = {e.id: e for e in crate.data_entities}
    assert "data/tilt.mrc" in files and files["data/tilt.mrc"]["sha256"] == dataset.sha256
    assert {"data/tilt.tlt", "metadata/tilt-series.json", "metadata/grid-provenance.json"} <= set(files)
    # each file's checksum and size are those of the bytes in the zip, the series' those on record
    for name, entity in files.items():
        assert hashlib.sha256(members[name]).hexdigest() == entity["sha256"], name
        assert int(entity["contentSize"]) == len(members[name]), name
    assert set(members) == set(files) | {"ro-crate-metadata.json"}
    # the acquisition parameters, on the series
    acquisition = _values(graph, graph["data/tilt.mrc"])
    assert acquisition["photon energy"]["value"] == 520 and acquisition["photon energy"]["unitText"] == "eV"
    assert acquisition["pixel size"]["value"] == pytest.approx(20.0) and acquisition["tilt step"]["value"] == 4.0
    assert acquisition["tilt min"]["value"] == -60 and acquisition["tilt max"]["value"] == 60
    assert acquisition["exposure"]["value"] == 1.5 and acquisition["tilting scheme"]["value"] == "min to max tilt"
    # the instruments: the beamline and the zone plate, in the acquisition action
    acquired = graph[f"#acquisition-{dataset.pk}"]
    instruments = [graph[i["@id"]] for i in acquired["instrument"]]
    assert {"HZB U41 TXM", "Zone-plate objective"} <= {i["name"] for i in instruments}
    assert _values(graph, graph["#zone-plate"])["outer zone width"]["value"] == 25
    # the sample's preparation: seeding, vitrification with its parameters, the check and the QC decision
    actions = {graph[a["@id"]]["name"]: graph[a["@id"]] for a in graph["./"]["mentions"]}
    seeding = actions["Cell seeding on the grid"]
    assert seeding["agent"] == {"@id": f"#person-{member.username}"} and seeding["startTime"]
    assert _values(graph, seeding)["passage"]["value"] == 12
    plunge = actions["Vitrification (plunge freezing)"]
    assert _values(graph, plunge)["humidity_percent"]["value"] == PLUNGE_PARAMS["humidity_percent"]
    assert graph[plunge["instrument"]["@id"]]["@type"] == "IndividualProduct"
    assert any(name.startswith("Light-microscopy check") for name in actions)
    assert actions["QC decision: accepted"]["description"] == "even ice"
    assert any(n.startswith("metadata/vitrification-run-") and n.endswith(".cif") for n in members)
    # who accepted it and the reconstruction it started, with the engine's version
    assert actions["Dataset accepted"]["agent"] == {"@id": f"#person-{member.username}"}
    job = next(a for n, a in actions.items() if n.startswith("Reconstruction (MBIR)"))
    assert graph[job["instrument"]["@id"]]["version"] == ENGINE_VERSION
    assert graph[job["result"]["@id"]]["sha256"] == volume.sha256
    assert graph[job["result"]["@id"]]["url"].endswith(f"/api/v1/volumes/{volume.pk}/ro-crate/")
    # the metadata descriptor and the flattened graph RO-Crate 1.1 asks for
    assert graph["ro-crate-metadata.json"]["conformsTo"] == {"@id": "https://w3id.org/ro/crate/1.1"}
    nested = [v for e in graph.values() for v in e.values() if isinstance(v, dict) and set(v) != {"@id"}]
    assert not nested


def test_a_volume_exports_as_an_ro_crate_with_the_job_that_made_it(api, reconstructed, tmp_path):
    dataset, volume = reconstructed
    members, graph, crate = _read_crate(api.get(f"/api/v1/volumes/{volume.pk}/ro-crate/"), tmp_path)
    files = {e.id: e for e in crate.data_entities}
    (mrc,) = [n for n in files if n.endswith(".mrc")]
    assert files[mrc]["sha256"] == volume.sha256 == hashlib.sha256(members[mrc]).hexdigest()
    assert members[mrc][208:212] == b"MAP "
    assert "metadata/fsc.json" in files and any(n.startswith("previews/") for n in files)
    assert "data/tilt.mrc" not in members  # the series is referenced, not copied
    series = graph[f"#tilt-series-{dataset.pk}"]
    assert series["sha256"] == dataset.sha256 and series["url"].endswith(f"/api/v1/datasets/{dataset.pk}/ro-crate/")
    job = graph[f"#reconstruction-job-{volume.job_id}"]
    assert job["result"] == {"@id": mrc} and graph[job["instrument"]["@id"]]["version"] == ENGINE_VERSION
    assert _values(graph, graph[mrc])["voxel size"]["value"] == pytest.approx(volume.voxel_size_nm)
    assert crate.root_dataset["license"].id == exports.DEFAULT_LICENSE


def test_the_licence_comes_from_the_settings(api, reconstructed, settings, tmp_path):
    settings.LIMS_EXPORT_LICENSE = "https://creativecommons.org/publicdomain/zero/1.0/"
    settings.LIMS_EXPORT_LICENSE_NAME = "CC0 1.0"
    dataset, _ = reconstructed
    _, graph, crate = _read_crate(api.get(f"/api/v1/datasets/{dataset.pk}/ro-crate/"), tmp_path)
    assert crate.root_dataset["license"].id == settings.LIMS_EXPORT_LICENSE
    assert graph[settings.LIMS_EXPORT_LICENSE]["name"] == "CC0 1.0"


def test_exports_are_lab_scoped(api_for, client, reconstructed, outsider):
    dataset, volume = reconstructed
    urls = [f"/api/v1/datasets/{dataset.pk}/ro-crate/", f"/api/v1/datasets/{dataset.pk}/metadata/",
            f"/api/v1/volumes/{volume.pk}/ro-crate/"]  # fmt: skip
    stranger = api_for(outsider)
    for url in urls:
        assert stranger.get(url).status_code == 404, url
        assert client.get(url).status_code == 401, url
    client.force_login(outsider)
    assert client.get(f"/reconstruction/datasets/{dataset.pk}/ro-crate.zip").status_code == 404
    assert client.get(f"/reconstruction/volumes/{volume.pk}/ro-crate.zip").status_code == 404


def test_the_pages_offer_the_ro_crate_and_give_the_same_zip(web, reconstructed, tmp_path):
    dataset, volume = reconstructed
    page = web.get(f"/reconstruction/datasets/{dataset.pk}/").content.decode()
    assert f"/reconstruction/datasets/{dataset.pk}/ro-crate.zip" in page
    assert (
        f"/reconstruction/volumes/{volume.pk}/ro-crate.zip"
        in web.get(f"/reconstruction/volumes/{volume.pk}/").content.decode()
    )
    members, _, crate = _read_crate(web.get(f"/reconstruction/datasets/{dataset.pk}/ro-crate.zip"), tmp_path)
    assert "data/tilt.mrc" in members and crate.root_dataset["license"]
    members, _, _ = _read_crate(web.get(f"/reconstruction/volumes/{volume.pk}/ro-crate.zip"), tmp_path, "v.zip")
    assert any(n.endswith(".mrc") for n in members)


def test_a_file_changed_on_disk_is_refused_with_409_and_a_reason(api, web, reconstructed):
    dataset, _ = reconstructed
    path = exports.services.dataset_path(dataset)
    with open(path, "ab") as handle:
        handle.write(b"appended later")
    response = api.get(f"/api/v1/datasets/{dataset.pk}/ro-crate/")
    assert response.status_code == 409 and "not the" in response.json()["detail"]
    page = web.get(f"/reconstruction/datasets/{dataset.pk}/ro-crate.zip", follow=True)
    assert "The RO-Crate was not made" in page.content.decode()
    os.remove(path)
    assert api.get(f"/api/v1/datasets/{dataset.pk}/ro-crate/").status_code == 409


def test_the_zip_streams_a_large_file_in_bounded_memory(tmp_path):
    big = tmp_path / "big.mrc"
    size = 48 * 1024 * 1024
    with open(big, "wb") as handle:  # random bytes in 1 MiB blocks: nothing to gain from compression either
        for i in range(size // 2**20):
            handle.write(hashlib.sha256(str(i).encode()).digest() * (2**20 // 32))
    crate = exports.Crate(metadata={"@graph": []}, members=[exports.Member("data/big.mrc", path=big, compress=False)])
    out = tmp_path / "out.zip"
    tracemalloc.start()
    chunks = 0
    with open(out, "wb") as handle:
        for chunk in exports.crate_chunks(crate):
            handle.write(chunk)
            chunks += 1
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert chunks > 40  # piece by piece, not one blob
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB for a {size / 2**20:.0f} MiB file"
    with zipfile.ZipFile(out) as archive:
        assert archive.testzip() is None
        with archive.open("data/big.mrc") as member, open(big, "rb") as original:
            assert hashlib.sha256(member.read()).digest() == hashlib.sha256(original.read()).digest()


@pytest.mark.parametrize(
    ("angles", "scheme", "step"),
    [
        (range(-60, 61, 2), "min to max tilt", 2.0),
        (range(60, -61, -3), "max to min tilt", 3.0),
        ([*range(0, 61, 2), *range(-2, -61, -2)], "bidirectional", 2.0),
        ([0, 2, -2, 4, -4, 6, -6, 8, -8, 10, -10], "dose symmetric", 2.0),
        ([0, 2, -2, -4, 4, 6, -6, -8, 8], "dose symmetric", 2.0),
        ([10, -30, 0, 40, -20], "other", 15.0),
        ([*range(0, -61, -3), *range(3, 61, 3)], "bidirectional", 3.0),
    ],
)
def test_the_tilt_scheme_and_step_come_from_the_angles_in_acquisition_order(angles, scheme, step):
    found = exports.tilt_scheme(list(angles))
    assert found["tilting_scheme"] == scheme and found["tilt_step"] == step


def test_the_metadata_action_answers_the_portal_fields(api, reconstructed):
    dataset, volume = reconstructed
    body = api.get(f"/api/v1/datasets/{dataset.pk}/metadata/").json()
    series = body["tilt_series"]
    assert (series["tilt_min"], series["tilt_max"], series["tilt_range"], series["tilt_step"]) == (-60, 60, 120, 4)
    assert series["tilting_scheme"] == "min to max tilt" and series["tilt_count"] == 31
    assert series["pixel_spacing"] == pytest.approx(200.0) and series["pixel_spacing_nm"] == pytest.approx(20.0)
    assert series["photon_energy_ev"] == 520 and series["zone_plate"]["outer_zone_width_nm"] == 25
    assert series["file"]["sha256"] == dataset.sha256
    # the recipe: a WBP preview, then the regularised PSF-aware method (the zone plate is known)
    preview, made = body["reconstructions"]
    assert preview["reconstruction_method"] == "WBP" and volume.job.method == "psf-mbir"
    assert made["reconstruction_method"] == "MBIR" and made["software_version"] == ENGINE_VERSION
    assert made["reconstruction_software"] == exports.ENGINE_NAME
    assert made["volume"]["sha256"] == volume.sha256
    assert made["volume"]["voxel_spacing"] == pytest.approx(volume.voxel_size_nm * 10)
    # the same document travels in the crate
    members = zipfile.ZipFile(
        io.BytesIO(b"".join(api.get(f"/api/v1/datasets/{dataset.pk}/ro-crate/").streaming_content))
    )
    in_crate = json.loads(members.read("metadata/tilt-series.json"))
    assert in_crate["tilt_series"] == series and in_crate["reconstructions"][-1]["job"] == made["job"]


def test_the_schema_documents_the_exports(api):
    schema = api.get("/api/v1/schema/", {"format": "json"}).json()
    crate = schema["paths"]["/api/v1/datasets/{id}/ro-crate/"]["get"]
    assert "application/zip" in crate["responses"]["200"]["content"] and "RO-Crate" in crate["description"]
    assert "application/zip" in schema["paths"]["/api/v1/volumes/{id}/ro-crate/"]["get"]["responses"]["200"]["content"]
    metadata = schema["paths"]["/api/v1/datasets/{id}/metadata/"]["get"]
    assert "tilting_scheme" in metadata["description"]
    assert metadata["responses"]["200"]["content"]["application/json"]["examples"]
