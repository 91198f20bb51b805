"""Demo data for `manage.py load_demo` (idempotent): checks with generated images, targets, a decision.

- a pre-vitrification check (3-channel fluorescence OME-TIFF) on one of ctx["seeded_grids"];
- a post-vitrification check with a generated grid atlas, calibrated to the HZB-2 finder pattern,
  three targets, and an accepted QC decision on one of ctx["vitrified_grids"];
- a second post-vitrification check left in the review queue, when there is another vitrified grid.

Leaves in ctx: `accepted_grids` (grids accepted here), `checks` (the demo checks) and
`vitrified_grids` refreshed to the grids still vitrified.
Images are generated with numpy; no binary file is committed.
"""

from __future__ import annotations

import datetime
import io

import numpy as np
import tifffile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from characterization import services, synthetic
from characterization.models import Check, CheckStage, QCDecision
from grids.lifecycle import GridState
from grids.models import Grid

DEMO_NOTE = "Demo check."


def _ome_tiff(data: np.ndarray, *, channels: list[str], pixel_size_um: float) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        data,
        ome=True,
        photometric="minisblack",
        metadata={
            "axes": "CYX" if data.ndim == 3 else "YX",
            "PhysicalSizeX": pixel_size_um,
            "PhysicalSizeY": pixel_size_um,
            **({"Channel": {"Name": channels}} if data.ndim == 3 else {}),
        },
    )
    return buffer.getvalue()


def _upload(check: Check, content: bytes, name: str, by, **kwargs):
    image = services.check_image_upload(
        lm_check=check, upload=SimpleUploadedFile(name, content, content_type="image/tiff"), by=by, **kwargs
    )
    # Compute now so the demo shows metrics at once; the queued task then finds the image done.
    services.check_image_analyse(image_id=image.pk)
    image.refresh_from_db()
    return image


def _pick(grids, state: str):
    return next((g for g in grids or [] if getattr(g, "state", None) == state), None)


def load(ctx: dict) -> None:
    lab, admin = ctx.get("lab"), ctx.get("admin")
    operator = ctx.get("bench") or admin
    reviewer = ctx.get("reviewer") or admin
    if lab is None or operator is None:
        return
    now = timezone.now()
    checks = []
    ctx.setdefault("accepted_grids", [])

    seeded = [g for g in ctx.get("seeded_grids") or [] if g is not None]
    demo_pre = Check.objects.filter(lab=lab, stage=CheckStage.PRE_VITRIFICATION, notes=DEMO_NOTE).first()
    if demo_pre is None:
        grid = _pick(list(Grid.objects.filter(pk__in=[g.pk for g in seeded]).order_by("pk")), GridState.SEEDED)
        if grid is not None:
            demo_pre = services.check_create(
                grid=grid,
                stage=CheckStage.PRE_VITRIFICATION,
                by=operator,
                checked_at=now - datetime.timedelta(days=2),
                microscope="Zeiss Axio Observer 7",
                microscope_stage="room temperature, glass-bottom dish",
                objective="20x/0.8 air",
                cell_density=3,
                morphology=4,
                notes=DEMO_NOTE,
            )
            cells = synthetic.render_cells(shape=(512, 512), channels=3, cells=25, seed=7)
            _upload(
                demo_pre,
                _ome_tiff(cells, channels=["Hoechst", "GFP", "MitoTracker Red"], pixel_size_um=0.325),
                "field-01.ome.tif",
                operator,
            )
    if demo_pre is not None:
        checks.append(demo_pre)

    vitrified = list(
        Grid.objects.filter(pk__in=[g.pk for g in ctx.get("vitrified_grids") or [] if g is not None]).order_by("pk")
    )
    demo_post = Check.objects.filter(lab=lab, stage=CheckStage.POST_VITRIFICATION, notes=DEMO_NOTE).order_by("pk")
    if not demo_post.exists():
        grid = _pick(vitrified, GridState.VITRIFIED)
        if grid is not None:
            post = services.check_create(
                grid=grid,
                stage=CheckStage.POST_VITRIFICATION,
                by=operator,
                checked_at=now - datetime.timedelta(hours=20),
                microscope="Leica EM Cryo CLEM",
                microscope_stage="Leica cryo stage, −195 °C",
                objective="50x/0.9 cryo",
                ice_quality_class=1,
                cell_integrity=4,
                grid_integrity=4,
                notes=DEMO_NOTE,
            )
            atlas = synthetic.render_atlas(
                rows=10, columns=10, pitch_px=56, bar_px=12, broken={(0, 9), (7, 2), (9, 9)}, spots=[(4, 4), (5, 6)]
            )
            image = _upload(
                post, _ome_tiff(atlas.image, channels=[], pixel_size_um=4.536), "atlas.ome.tif", operator, kind="atlas"
            )
            landmarks = [
                {"x": atlas.centres[(r, c)][0], "y": atlas.centres[(r, c)][1], "square": f"{'ABCDEFGHIJ'[r]}{c + 1}"}
                for r, c in ((0, 0), (0, 9), (9, 0), (5, 5))
            ]
            services.check_image_calibrate(image=image, landmarks=landmarks, by=operator)
            for label, (r, c), (dx, dy), priority in (
                ("HeLa, thin periphery", (2, 3), (8, -5), 1),
                ("HeLa pair", (4, 6), (-12, 10), 2),
                ("mitotic cell", (6, 1), (0, 15), 3),
            ):
                x, y = atlas.centres[(r, c)]
                services.target_create(image=image, x=x + dx, y=y + dy, label=label, priority=priority, by=operator)
            services.qc_decide(
                lm_check=post,
                decision="accepted",
                reasons="Vitreous thin ice, 97 of 100 squares intact, three targets mapped.",
                by=reviewer,
            )
            ctx["accepted_grids"].append(Grid.objects.get(pk=post.grid_id))
            waiting = _pick([g for g in vitrified if g.pk != grid.pk], GridState.VITRIFIED)
            if waiting is not None:
                services.check_create(
                    grid=waiting,
                    stage=CheckStage.POST_VITRIFICATION,
                    by=operator,
                    checked_at=now - datetime.timedelta(hours=3),
                    microscope="Leica EM Cryo CLEM",
                    objective="10x/0.3 cryo",
                    ice_quality_class=2,
                    cell_integrity=3,
                    grid_integrity=5,
                    notes=DEMO_NOTE,
                )
    else:
        ctx["accepted_grids"].extend(
            d.grid
            for d in QCDecision.objects.filter(lm_check__in=demo_post, decision="accepted").select_related("grid")
        )
    checks.extend(Check.objects.filter(lab=lab, stage=CheckStage.POST_VITRIFICATION, notes=DEMO_NOTE))
    ctx["checks"] = checks
    # Refresh: the grids still vitrified (the accepted one moved on).
    ids = [g.pk for g in ctx.get("vitrified_grids") or [] if g is not None]
    if ids:
        ctx["vitrified_grids"] = list(Grid.objects.filter(pk__in=ids, state=GridState.VITRIFIED).order_by("pk"))
