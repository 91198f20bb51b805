"""Reconstruction in a real browser: a large tilt series uploaded in resumable chunks, accepted from its page,
followed to its volume, and scrolled through in the slice viewer; another lab sees none of it."""

from __future__ import annotations

import re

import numpy as np
import pytest
from playwright.sync_api import expect

from reconstruction.engine import io as engine_io
from reconstruction.models import Dataset, JobState
from tests.reconstruction.factories import shipped_grids

pytestmark = pytest.mark.django_db(transaction=True)


def test_upload_in_chunks_accept_and_open_the_volume(logged_in, lab, member, monkeypatch, shot, tmp_path):
    page = logged_in
    session, grids = shipped_grids(lab=lab, member=member, monkeypatch=monkeypatch, count=1)
    grid = grids[0]
    # 9.2 MB: above the page's 8 MiB chunk, so the browser sends it in two resumable pieces.
    rng = np.random.default_rng(0)
    projections = (0.2 + 0.05 * rng.random((140, 128, 128))).astype(np.float32)
    path = tmp_path / "cell7.mrc"
    engine_io.write_mrc(path, projections, 0.015)
    page.goto(f"/grids/{grid.pk}/")
    page.click("text=Add a dataset (tilt series)")
    page.wait_for_url("**/reconstruction/datasets/add/**")
    page.set_input_files("input[name=file]", str(path))
    page.fill("input[name=angles_text]", "-69.5:69.5:1")
    page.fill("input[name=photon_energy_ev]", "520")
    shot("reconstruction-add-dataset")
    with page.expect_navigation(url="**/reconstruction/datasets/*/", timeout=120_000):
        page.click("button:has-text('Add the dataset')", no_wait_after=True)
    dataset = Dataset.objects.get(grid=grid)
    assert dataset.tilts == 140 and dataset.pixel_size_nm == pytest.approx(15)
    page.wait_for_selector("text=Next step:")
    shot("reconstruction-dataset")
    page.check("input[name=decision][value=accept]")
    with page.expect_navigation(url="**/reconstruction/jobs/*/", timeout=240_000):
        page.click("button:has-text('Record the decision')", no_wait_after=True)
    preview, job = dataset.jobs.order_by("pk")  # the recipe: a quick WBP preview, then the volume to keep
    assert preview.method == "wbp" and job.method == "sirt" and page.url.endswith(f"/jobs/{job.pk}/")
    assert job.state == JobState.SUCCEEDED, job.error
    shot("reconstruction-job")
    page.click("text=Open the volume")
    page.wait_for_selector("text=Slice viewer")
    page.select_option("[data-plane]", "xz")
    page.fill("[data-slice]", "10")
    page.dispatch_event("[data-slice]", "input")
    # (no wait_for_function: the content security policy forbids the eval it needs)
    expect(page.locator("[data-slice-image]")).to_have_attribute("src", re.compile(r"xz\.png\?index=10&"))
    picture = page.request.get(page.locator("[data-slice-image]").get_attribute("src"))
    assert picture.ok and picture.body()[:4] == b"\x89PNG"
    shot("reconstruction-volume")


def test_a_bad_file_is_refused_on_the_page(logged_in, lab, member, monkeypatch, tmp_path):
    page = logged_in
    session, grids = shipped_grids(lab=lab, member=member, monkeypatch=monkeypatch, count=1)
    bad = tmp_path / "broken.mrc"
    bad.write_bytes(b"this is not an MRC file" * 20)
    page.goto(f"/reconstruction/datasets/add/?grid={grids[0].pk}")
    page.set_input_files("input[name=file]", str(bad))
    page.fill("input[name=angles_text]", "-60:60:2")
    page.click("button:has-text('Add the dataset')")
    page.wait_for_selector("text=cannot read")
    assert not Dataset.objects.exists()
