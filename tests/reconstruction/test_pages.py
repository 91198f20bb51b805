"""Reconstruction pages: add a dataset, accept it, follow the job, open the volume; other labs see nothing."""

from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reconstruction import services
from reconstruction.models import Dataset, SlabState


def _add(web, beam_session, grid, path, **extra):
    from beamtime.models import SampleSheetEntry

    entry = SampleSheetEntry.objects.get(session=beam_session, grid=grid)
    with open(path, "rb") as handle, open(path.with_suffix(".tlt"), "rb") as tlt:
        return web.post("/reconstruction/datasets/add/", {"entry": entry.pk, "file": handle, "angles": tlt, **extra})


def test_from_upload_to_volume_on_the_pages(web, beam_session, grid, mrc_series):
    page = web.get(f"/reconstruction/datasets/add/?grid={grid.pk}")
    assert page.status_code == 200 and grid.barcode in page.content.decode()
    added = _add(web, beam_session, grid, mrc_series[0], photon_energy_ev="520")
    assert added.status_code == 302, added.content.decode()[:2000]
    dataset = Dataset.objects.get()
    detail = web.get(added.url).content.decode()
    assert "Next step:" in detail and "accept the dataset" in detail.lower() and "Tilt scheme" in detail
    assert web.get(f"/reconstruction/datasets/{dataset.pk}/montage.png")["Content-Type"] == "image/png"
    decided = web.post(f"/reconstruction/datasets/{dataset.pk}/decide/", {"decision": "accept"})
    assert decided.status_code == 302 and "/reconstruction/jobs/" in decided.url
    job_page = web.get(decided.url).content.decode()
    assert "Open the volume" in job_page
    preview, final = dataset.jobs.order_by("pk")  # the recipe: a quick WBP preview, then SIRT
    assert (preview.method, final.method) == ("wbp", "sirt") and decided.url.endswith(f"/jobs/{final.pk}/")
    volume = final.volume
    volume_page = web.get(f"/reconstruction/volumes/{volume.pk}/").content.decode()
    assert "Slice viewer" in volume_page and "Resolution" in volume_page and "Download MRC" in volume_page
    for plane in ("xy", "xz", "yz"):
        assert web.get(f"/reconstruction/volumes/{volume.pk}/preview/{plane}.png").status_code == 200
    image = web.get(f"/reconstruction/volumes/{volume.pk}/slice/xz.png?index=3&low=0&high=0.5")
    assert image.status_code == 200 and image.content[:8] == b"\x89PNG\r\n\x1a\n"
    assert web.get(f"/grids/{grid.pk}/").content.decode().count(dataset.name) >= 1


@pytest.mark.parametrize(
    "query",
    ["index=-99999", "index=99999999999999999999", "index=abc", "low=nan&high=inf", "low=5&high=1", "index=1e400"],
)
def test_slice_viewer_survives_odd_parameters(web, member, beam_session, grid, mrc_series, query):
    path = mrc_series[0]
    dataset = services.dataset_upload(
        by=member,
        session=beam_session,
        grid=grid,
        upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_text="-60:60:4",
    )
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    volume = dataset.jobs.get(method="sirt").volume
    assert web.get(f"/reconstruction/volumes/{volume.pk}/slice/xy.png?{query}").status_code == 200
    assert web.get(f"/reconstruction/volumes/{volume.pk}/slice/zz.png?{query}").status_code == 404


def test_form_errors_are_shown_and_nothing_is_kept(web, beam_session, grid, tmp_path, settings):
    from beamtime.models import SampleSheetEntry

    entry = SampleSheetEntry.objects.get(session=beam_session, grid=grid)
    empty = web.post("/reconstruction/datasets/add/", {"entry": entry.pk})
    assert empty.status_code == 200 and "Choose the tilt-series file" in empty.content.decode()
    bad = web.post(
        "/reconstruction/datasets/add/",
        {
            "entry": entry.pk,
            "file": SimpleUploadedFile("x.mrc", b"garbage" * 50),
            "angles_text": "-60:60:2",
            "pixel_size_nm": "-4",
        },
    )
    text = bad.content.decode()
    assert bad.status_code == 200 and "between 1 and 1000" in text
    wrong = web.post(
        "/reconstruction/datasets/add/",
        {"entry": entry.pk, "file": SimpleUploadedFile("x.mrc", b"garbage" * 50), "angles_text": "-60:60:2"},
    )
    assert wrong.status_code == 200 and "cannot read" in wrong.content.decode()
    assert not Dataset.objects.exists()


def test_job_form_refusals_are_messages_not_errors(web, member, beam_session, grid, mrc_series):
    path = mrc_series[0]
    dataset = services.dataset_upload(
        by=member,
        session=beam_session,
        grid=grid,
        upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_text="-60:60:4",
    )
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    response = web.post(
        f"/reconstruction/datasets/{dataset.pk}/reconstruct/", {"method": "sirt", "iterations": "100000"}, follow=True
    )
    assert response.status_code == 200 and "The job was not started" in response.content.decode()
    response = web.post(
        f"/reconstruction/datasets/{dataset.pk}/reconstruct/", {"method": "sirt", "filter_name": "hann"}, follow=True
    )
    assert "applies to wbp only" in response.content.decode()
    assert dataset.jobs.count() == 2  # the preview and SIRT, nothing more
    started = web.post(
        f"/reconstruction/datasets/{dataset.pk}/reconstruct/",
        {"method": "wbp", "slab_size": "5", "filter_name": "hann"},
    )
    assert started.status_code == 302 and dataset.jobs.count() == 3
    job = dataset.jobs.get(method="wbp", parameters__filter_name="hann")
    assert job.slab_count == 3 and not job.slabs.exclude(state=SlabState.DONE).exists()


def test_other_labs_get_404_and_an_empty_index(client, outsider, member, beam_session, grid, mrc_series):
    path = mrc_series[0]
    dataset = services.dataset_upload(
        by=member,
        session=beam_session,
        grid=grid,
        upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_text="-60:60:4",
    )
    services.dataset_decide(dataset=dataset, accept=True, by=member)
    job = dataset.jobs.get(method="sirt")
    client.force_login(outsider)
    for url in (
        f"/reconstruction/datasets/{dataset.pk}/", f"/reconstruction/datasets/{dataset.pk}/montage.png",
        f"/reconstruction/jobs/{job.pk}/", f"/reconstruction/volumes/{job.volume.pk}/",
        f"/reconstruction/volumes/{job.volume.pk}/download/", f"/reconstruction/volumes/{job.volume.pk}/slice/xy.png",
    ):  # fmt: skip
        assert client.get(url).status_code == 404, url
    assert client.post(f"/reconstruction/jobs/{job.pk}/cancel/").status_code == 404
    assert dataset.name not in client.get("/reconstruction/").content.decode()


def test_staff_of_the_beamline_see_and_accept_the_dataset(client, staff, member, beam_session, grid, mrc_series):
    path = mrc_series[0]
    dataset = services.dataset_upload(
        by=member,
        session=beam_session,
        grid=grid,
        upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_text="-60:60:4",
    )
    client.force_login(staff)
    assert dataset.name in client.get("/reconstruction/").content.decode()
    response = client.post(
        f"/reconstruction/datasets/{dataset.pk}/decide/", {"decision": "reject", "note": ""}, follow=True
    )
    assert "say why" in response.content.decode()
    dataset.refresh_from_db()
    assert dataset.status == "pending"


def test_guide_and_index_guide_a_newcomer(web):
    index = web.get("/reconstruction/").content.decode()
    assert "What to do here" in index and "how reconstruction works" in index.lower()
    guide = web.get("/reconstruction/guide/").content.decode()
    assert "missing wedge" in guide and "Fourier" in guide
    assert web.get("/reconstruction/guide/nope.png").status_code == 404
