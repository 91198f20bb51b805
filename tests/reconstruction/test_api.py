"""The reconstruction API: datasets, uploads in chunks, jobs and volumes, scoped to the lab."""

from __future__ import annotations

import pytest

from reconstruction.models import Dataset, DatasetUpload, ReconstructionJob


def _post_dataset(api, beam_session, grid, path, **extra):
    with open(path, "rb") as handle, open(path.with_suffix(".tlt"), "rb") as tlt:
        return api.post(
            "/api/v1/datasets/",
            {"session": beam_session.pk, "grid": grid.pk, "file": handle, "angles": tlt, **extra},
            format="multipart",
        )


def test_dataset_accept_job_volume_and_download_end_to_end(api, beam_session, grid, mrc_series):
    created = _post_dataset(api, beam_session, grid, mrc_series[0], photon_energy_ev=520)
    assert created.status_code == 201, created.content
    body = created.json()
    assert body["status"] == "pending" and body["tilts"] == 31 and body["photon_energy_ev"] == 520
    accepted = api.post(f"/api/v1/datasets/{body['id']}/accept/")
    assert accepted.status_code == 201, accepted.content
    job = api.get(f"/api/v1/reconstruction-jobs/{accepted.json()['id']}/").json()
    assert job["state"] == "succeeded" and job["progress"] == 100 and job["volume"]
    volume = api.get(f"/api/v1/volumes/{job['volume']}/").json()
    assert volume["units"] == "µm⁻¹" and volume["dataset"] == body["id"] and volume["method"] == "sirt"
    download = api.get(f"/api/v1/volumes/{job['volume']}/download/")
    assert download.status_code == 200 and download["X-Content-SHA256"] == volume["sha256"]
    content = b"".join(download.streaming_content)
    assert content[208:212] == b"MAP "  # the MRC signature
    again = api.post(
        "/api/v1/reconstruction-jobs/", {"dataset": body["id"], "method": "sirt", "parameters": {}}, format="json"
    )
    assert again.status_code == 200 and again.json()["id"] == job["id"]  # the same request: the same job
    wbp = api.post(
        "/api/v1/reconstruction-jobs/", {"dataset": body["id"], "method": "wbp", "parameters": {"filter_name": "hann"}},
        format="json",
    )  # fmt: skip
    assert wbp.status_code == 201 and wbp.json()["state"] == "succeeded"


def test_bad_requests_answer_400_or_409_with_the_field(api, beam_session, grid, mrc_series):
    missing = api.post("/api/v1/datasets/", {"session": beam_session.pk, "grid": grid.pk}, format="multipart")
    assert missing.status_code == 400 and "file" in missing.json()
    created = _post_dataset(api, beam_session, grid, mrc_series[0]).json()
    early = api.post("/api/v1/reconstruction-jobs/", {"dataset": created["id"], "method": "wbp"}, format="json")
    assert early.status_code == 409 and "accept it" in early.json()["detail"]
    api.post(f"/api/v1/datasets/{created['id']}/accept/")
    bad = api.post(
        "/api/v1/reconstruction-jobs/", {"dataset": created["id"], "method": "sirt", "parameters": {"iterations": -3}},
        format="json",
    )  # fmt: skip
    assert bad.status_code == 400 and bad.json()["field"] == "iterations"
    reject = api.post(f"/api/v1/datasets/{created['id']}/reject/", {"note": "x"}, format="json")
    assert reject.status_code == 409


def test_another_labs_records_answer_404(api, api_for, outsider, beam_session, grid, mrc_series):
    created = _post_dataset(api, beam_session, grid, mrc_series[0]).json()
    job = api.post(f"/api/v1/datasets/{created['id']}/accept/").json()
    volume_id = api.get(f"/api/v1/reconstruction-jobs/{job['id']}/").json()["volume"]
    other = api_for(outsider)
    for url in (
        f"/api/v1/datasets/{created['id']}/", f"/api/v1/datasets/{created['id']}/montage/",
        f"/api/v1/reconstruction-jobs/{job['id']}/", f"/api/v1/volumes/{volume_id}/",
        f"/api/v1/volumes/{volume_id}/download/",
    ):  # fmt: skip
        assert other.get(url).status_code == 404, url
    assert other.post(f"/api/v1/reconstruction-jobs/{job['id']}/cancel/").status_code == 404
    # Anonymous: 401; format suffixes and odd parameters on the new actions: an answer, never a 500.
    from rest_framework.test import APIClient

    assert APIClient().get(f"/api/v1/datasets/{created['id']}/").status_code == 401
    for url in (
        f"/api/v1/datasets/{created['id']}/montage.json", f"/api/v1/volumes/{volume_id}/download.json",
        "/api/v1/datasets/?grid=99999999999999999999999", "/api/v1/reconstruction-jobs/?state=nonsense",
        "/api/v1/dataset-uploads/not-a-uuid/",
    ):  # fmt: skip
        assert api.get(url).status_code < 500, url
    assert other.get("/api/v1/datasets/").json()["count"] == 0
    jobs_before = ReconstructionJob.objects.count()
    stolen = other.post("/api/v1/reconstruction-jobs/", {"dataset": created["id"], "method": "wbp"}, format="json")
    assert stolen.status_code == 400 and ReconstructionJob.objects.count() == jobs_before
    # Posting a dataset for another lab's grid reads as a grid that does not exist.
    with open(mrc_series[0], "rb") as handle:
        refused = other.post(
            "/api/v1/datasets/", {"session": beam_session.pk, "grid": grid.pk, "file": handle}, format="multipart"
        )
    assert refused.status_code == 400 and Dataset.objects.count() == 1


def test_chunked_upload_through_the_api(api, beam_session, grid, mrc_series):
    data = mrc_series[0].read_bytes()
    started = api.post("/api/v1/dataset-uploads/", {"filename": "cell.mrc", "size_bytes": len(data)}, format="json")
    assert started.status_code == 201, started.content
    upload_id = started.json()["id"]
    url = f"/api/v1/dataset-uploads/{upload_id}/chunk/"
    first = api.put(f"{url}?offset=0", data[:4096], content_type="application/octet-stream")
    assert first.status_code == 200 and first.json()["received_bytes"] == 4096
    wrong = api.put(f"{url}?offset=100", data[100:200], content_type="application/octet-stream")
    assert wrong.status_code == 409 and wrong.json()["received_bytes"] == 4096
    assert api.get(f"/api/v1/dataset-uploads/{upload_id}/").json()["received_bytes"] == 4096
    api.put(f"{url}?offset=4096", data[4096:], content_type="application/octet-stream")
    made = api.post(
        "/api/v1/datasets/", {"session": beam_session.pk, "grid": grid.pk, "upload": upload_id, "angles_text": "-60:60:4"},
        format="multipart",
    )  # fmt: skip
    assert made.status_code == 201, made.content
    assert not DatasetUpload.objects.filter(pk=upload_id).exists()


@pytest.mark.parametrize("size", [0, -5, "huge", 10**15])
def test_upload_sizes_out_of_range_are_refused(api, size):
    response = api.post("/api/v1/dataset-uploads/", {"filename": "cell.mrc", "size_bytes": size}, format="json")
    assert response.status_code == 400 and not DatasetUpload.objects.exists()


def test_grid_provenance_and_next_step_carry_the_datasets(api, web, beam_session, grid, mrc_series):
    page = web.get(f"/grids/{grid.pk}/").content.decode()
    assert "Add a dataset (tilt series)" in page  # shipped: the next step is the tilt series
    created = _post_dataset(api, beam_session, grid, mrc_series[0]).json()
    assert "Check and accept the dataset" in web.get(f"/grids/{grid.pk}/").content.decode()
    api.post(f"/api/v1/datasets/{created['id']}/accept/")
    provenance = api.get(f"/api/v1/grids/{grid.pk}/provenance/").json()
    (dataset,) = provenance["datasets"]
    assert dataset["sha256"] == created["sha256"] and dataset["status"] == "accepted" and dataset["decided_by"]
    preview, job = dataset["jobs"]
    assert preview["method"] == "wbp" and preview["parameters"]["align"] is True
    assert job["method"] == "sirt" and job["volume"]["units"] == "µm⁻¹" and job["engine_version"]
