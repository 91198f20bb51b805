"""How a job is cut into slabs: the FSC halves as slabs of their own, one noise-aware SIRT count for the whole
volume, and as many volume slabs as there are worker processes to take them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from grids import insights
from reconstruction import engine, selectors, services, tasks
from reconstruction.engine.noise import sirt_iterations_for
from reconstruction.engine.quality import fourier_shell_correlation
from reconstruction.models import Dataset, JobSlab, JobState, ReconstructionWorker, SlabPart
from tests.reconstruction.factories import PIXEL_UM


@pytest.fixture
def dataset(member, beam_session, grid, mrc_series):
    path = mrc_series[0]
    made = services.dataset_upload(
        by=member, session=beam_session, grid=grid, upload=SimpleUploadedFile(path.name, path.read_bytes()),
        angles_file=SimpleUploadedFile("tilt.tlt", path.with_suffix(".tlt").read_bytes()),
    )  # fmt: skip
    # Accepted without its recipe's jobs: each test asks for the jobs it looks at.
    Dataset.objects.filter(pk=made.pk).update(status="accepted", decided_by=member, decided_at=timezone.now())
    insights.grid_facts_changed([made.grid_id])  # as dataset_decide would
    made.refresh_from_db()
    return made


def test_the_fsc_halves_are_slabs_of_their_own_and_give_the_resolution_of_the_engines_halves(
    dataset, member, mrc_series, monkeypatch
):
    _, projections, angles = mrc_series
    sent = []
    monkeypatch.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: sent.append(slab_id))
    job, _ = services.job_request(
        dataset=dataset, method="sirt", parameters={"slab_size": 4, "align": False}, by=member
    )
    slabs = list(JobSlab.objects.filter(job=job).order_by("index"))
    assert [s.pk for s in slabs] == sent  # the volume's slabs are sent first, the halves after them
    assert [s.part for s in slabs] == [SlabPart.VOLUME] * job.slab_count + [SlabPart.EVEN, SlabPart.ODD]
    start, stop = services.fsc_halves(dataset)
    assert (slabs[-1].start, slabs[-1].stop) == (start, stop) == (0, dataset.rows)  # 12 rows: all of them
    # The workers take them in any order: the halves first here.
    for slab_id in reversed(sent):
        services.slab_run(slab_id=slab_id)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    iterations = job.parameters["iterations"]
    even, odd = (
        engine.reconstruct(
            np.ascontiguousarray(projections[t, start:stop]), angles[t], method="sirt", thickness=dataset.columns,
            iterations=iterations, circle=False,
        )
        for t in (slice(0, None, 2), slice(1, None, 2))
    )  # fmt: skip
    direct = fourier_shell_correlation(even, odd, pixel_size_um=PIXEL_UM)
    np.testing.assert_allclose(job.volume.fsc["fsc"], np.round(direct.fsc, 4), atol=2e-4)
    expected = direct.resolution_nm.get(0.143)  # None: no crossing on this small phantom
    assert job.volume.resolution_nm == (None if expected is None else pytest.approx(expected, rel=1e-3))
    assert "even tilts (fsc)" in job.log and "odd tilts (fsc)" in job.log


def test_the_second_fsc_half_to_finish_computes_the_fsc_so_the_assembly_does_not(dataset, member, monkeypatch):
    from django.core.files.storage import default_storage

    from reconstruction.engine import quality

    calls = []
    real = quality.fourier_shell_correlation

    def counted(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(quality, "fourier_shell_correlation", counted)
    sent = []
    monkeypatch.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: sent.append(slab_id))
    job, _ = services.job_request(
        dataset=dataset, method="sirt", parameters={"slab_size": 6, "align": False}, by=member
    )
    volume_slabs, halves = sent[: job.slab_count], sent[job.slab_count :]
    services.slab_run(slab_id=halves[0])
    assert calls == []  # one half alone has nothing to correlate
    services.slab_run(slab_id=halves[1])
    assert len(calls) == 1
    stored = Path(default_storage.path(f"{services.slab_folder(job)}/fsc.json"))
    assert stored.exists()
    for slab_id in volume_slabs:
        services.slab_run(slab_id=slab_id)
    job.refresh_from_db()
    assert job.state == JobState.SUCCEEDED, job.error
    assert len(calls) == 1  # the assembly read the halves' FSC
    assert job.volume.fsc["fsc"] and not stored.exists()


def test_a_series_too_short_to_split_has_no_fsc_halves(dataset, member, monkeypatch):
    Dataset.objects.filter(pk=dataset.pk).update(tilts=7)
    dataset.refresh_from_db()
    assert services.fsc_halves(dataset) is None


def test_sirt_runs_one_noise_aware_count_measured_on_the_whole_series(dataset, member, mrc_series, monkeypatch):
    _, projections, _ = mrc_series
    monkeypatch.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: None)
    assert dataset.relative_noise is not None  # measured when the series was read
    job, _ = services.job_request(
        dataset=dataset, method="sirt", parameters={"slab_size": 4, "align": False}, by=member
    )
    assert job.parameters["iterations"] == sirt_iterations_for(projections)
    # Every slab and both halves run the job's count, whatever their own rows' noise would have asked for.
    counts = []
    real = engine.reconstruct
    monkeypatch.setattr(engine, "reconstruct", lambda *a, **k: counts.append(k.get("iterations")) or real(*a, **k))
    for slab in job.slabs.order_by("index"):
        services.slab_run(slab_id=slab.pk)
    assert counts == [job.parameters["iterations"]] * job.slabs.count()
    monkeypatch.setattr(engine, "reconstruct", real)
    # Given by the user, the count is theirs.
    mine, _ = services.job_request(
        dataset=dataset, method="sirt", parameters={"iterations": 7, "align": False}, by=member
    )
    assert mine.parameters["iterations"] == 7
    # Asking with the count the default chose is the same job.
    again, created = services.job_request(
        dataset=dataset, method="sirt",
        parameters={"slab_size": 4, "align": False, "iterations": job.parameters["iterations"]}, by=member,
    )  # fmt: skip
    assert not created and again.pk == job.pk


def test_a_series_added_before_its_noise_was_kept_is_measured_when_a_job_needs_it(
    dataset, member, mrc_series, monkeypatch
):
    _, projections, _ = mrc_series
    monkeypatch.setattr(tasks.reconstruct_slab, "delay", lambda slab_id: None)
    Dataset.objects.filter(pk=dataset.pk).update(relative_noise=None)
    dataset.refresh_from_db()
    job, _ = services.job_request(dataset=dataset, method="sirt", parameters={"align": False}, by=member)
    dataset.refresh_from_db()
    assert dataset.relative_noise == pytest.approx(engine.noise.relative_noise(projections), rel=1e-4)
    assert job.parameters["iterations"] == sirt_iterations_for(projections)


@pytest.mark.parametrize(
    ("processes", "rows", "tilts", "size"),
    [
        (0, 64, 61, 32),  # no worker said it is up
        (1, 64, 61, 64),
        (2, 64, 61, 32),  # two volume slabs and the two FSC halves: a slab and a half on each process
        (2, 64, 7, 32),  # no FSC halves: one slab per process
        (3, 64, 61, 32),
        (4, 64, 61, 32),  # 3 slabs of 22 would end no sooner than 2 of 32 with the halves beside them
        (8, 64, 61, 16),  # never under 16 slices
        (1, 300, 61, 128),  # never over 128
        (2, 512, 61, 128),
        (2, 12, 61, 12),
        (4, 40, 61, 20),
    ],
)
def test_a_job_shares_its_slabs_and_fsc_halves_out_over_the_worker_processes(db, processes, rows, tilts, size):
    if processes:
        services.worker_seen(name="w1@host", processes=processes)
    assert selectors.worker_processes() == processes
    assert services.default_slab_size(Dataset(rows=rows, tilts=tilts, focal_planes=1)) == size


def test_workers_are_counted_while_up_and_forgotten_when_they_stop_or_go_silent(db):
    services.worker_seen(name="a@host", processes=2)
    services.worker_seen(name="b@host", processes=1)
    services.worker_seen(name="a@host", processes=3)  # restarted with another concurrency: one row
    assert selectors.worker_processes() == 4
    services.worker_gone(name="b@host")
    assert selectors.worker_processes() == 3
    stale = timezone.now() - timezone.timedelta(hours=selectors.WORKER_SEEN_HOURS + 1)
    ReconstructionWorker.objects.filter(name="a@host").update(seen_at=stale)  # killed without a goodbye
    assert selectors.worker_processes() == 0
    services.worker_active(name="a@host")  # it took a slab after all
    assert selectors.worker_processes() == 3
    services.worker_seen(name="x" * 500, processes=10**6)  # odd values from a worker's config stay in bounds
    assert ReconstructionWorker.objects.get(name="x" * 200).processes == 1000


def test_the_worker_signals_record_a_worker_and_its_processes(db):
    class Controller:
        concurrency = 2

    class Consumer:
        hostname = "celery@bench"
        controller = Controller()

    tasks._send_waiting_jobs(sender=Consumer())
    assert ReconstructionWorker.objects.get(name="celery@bench").processes == 2
    tasks._worker_stops(sender=Consumer())
    assert not ReconstructionWorker.objects.exists()
