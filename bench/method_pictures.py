"""One simulated cell slice by each of the engine's methods, side by side, for docs/engine.md (issue 13).

``python -m bench.method_pictures [out.png]`` simulates the depth-of-focus test cell of ``bench.psf_gain``
(25 nm zone plate at 520 eV, depth of field 1.05 µm, 20 nm pixels, a 3.4 µm cell in 192² slices), tilted
±65° in 2° steps with 10⁴ photons per pixel (a grid's missing wedge and a real dose), focused on the tilt
axis, and reconstructs it by WBP, SIRT, mbir (no PSF), psf-sirt and psf-mbir (the zone plate's blur in the
model). It writes one picture (the truth, then each method, one shared grey scale in µm⁻¹) and prints a
Markdown table of PSNR over the cell, over its parts more than one depth of field from focus, SSIM over the
cell and there, and time.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import numpy as np

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "docs" / "engine-methods.png"


def main(out: Path = DEFAULT_OUT) -> str:
    from PIL import Image, ImageDraw

    from bench.psf_gain import masked_ssim, thick_cell
    from reconstruction.engine import reconstruct
    from reconstruction.engine.focus import mean_defocus_um
    from reconstruction.engine.quality import psnr, to_lac
    from reconstruction.engine.simulate import add_noise, project

    case = thick_cell()
    p, zp, rows, n, sl = case.pixel_um, case.zone_plate, case.rows, case.n, case.graded
    dof = zp.depth_of_field_um
    truth, cell, data_range = case.truth, case.cell, case.data_range
    angles = np.arange(-65.0, 65.1, 2.0)
    series = add_noise(project(case.phantom.volume, angles, p, zone_plate=zp), photons=1e4, seed=2)
    far = cell & (mean_defocus_um(n, n, angles, p)[None] > dof)
    runs = {
        "WBP": {"method": "wbp"},
        "SIRT": {"method": "sirt"},
        "mbir": {"method": "mbir"},
        "psf-sirt": {"method": "psf-sirt", "zone_plate": zp, "pixel_size_um": p},
        "psf-mbir": {"method": "psf-mbir", "zone_plate": zp, "pixel_size_um": p},
    }
    load = os.getloadavg()[0]
    panels = [("truth", truth[rows // 2], "")]
    lines = [
        "| method | PSNR over the cell (dB) | PSNR > 1 DOF from focus (dB) | SSIM cell / > 1 DOF | time (s) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, kw in runs.items():
        t0 = time.perf_counter()
        volume = to_lac(reconstruct(series, angles, **kw), p)[sl]
        seconds = time.perf_counter() - t0
        whole = psnr(volume, truth, mask=cell, data_range=data_range)
        outer = psnr(volume, truth, mask=far, data_range=data_range)
        ssim = [masked_ssim(volume, truth, m, data_range) for m in (cell, far)]
        lines.append(f"| {name} | {whole:.2f} | {outer:.2f} | {ssim[0]:.3f} / {ssim[1]:.3f} | {seconds:.1f} |")
        panels.append((name, volume[rows // 2], f"{whole:.1f} dB, {seconds:.1f} s"))
    low, high = float(truth.min()), float(truth.max())
    label_h, gap = 34, 6
    sheet = Image.new("L", (len(panels) * (n + gap) + gap, n + label_h + gap), 255)
    draw = ImageDraw.Draw(sheet)
    for k, (name, image, note) in enumerate(panels):
        grey = np.clip((image - low) / (high - low) * 255.0, 0, 255).astype(np.uint8)
        x = gap + k * (n + gap)
        sheet.paste(Image.fromarray(grey), (x, label_h))
        draw.text((x, 4), name, fill=0)
        draw.text((x, 18), note, fill=0)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    lines.append("")
    lines.append(f"Load average at the start: {load:.2f}; picture: {out.name}.")
    return "\n".join(lines)


if __name__ == "__main__":
    print(main(Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT))
