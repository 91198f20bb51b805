"""Each metric on images whose true value is known by construction."""

from __future__ import annotations

import numpy as np
import pytest

from characterization import metrics, synthetic


def checkerboard(n: int = 64, dtype=np.uint16, high: int = 1000) -> np.ndarray:
    return ((np.indices((n, n)).sum(axis=0) % 2) * high).astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_focus_of_a_checkerboard_is_16_and_of_a_flat_image_0(dtype):
    assert metrics.focus_measure(checkerboard(dtype=dtype, high=200)) == pytest.approx(16.0)
    assert metrics.focus_measure(np.full((32, 32), 7, dtype=dtype)) == 0.0


def test_focus_is_independent_of_intensity_scale_and_offset():
    board = checkerboard(high=100)
    assert metrics.focus_measure(board + 5000) == pytest.approx(metrics.focus_measure(board * 60))


def test_focus_drops_when_the_image_is_blurred():
    from scipy import ndimage

    cells = synthetic.render_cells(shape=(256, 256), channels=1)[0]
    blurred = ndimage.gaussian_filter(cells.astype(np.float32), 3).astype(np.uint16)
    assert metrics.focus_measure(blurred) < 0.2 * metrics.focus_measure(cells)


def test_focus_in_blocks_matches_the_whole_image_laplacian():
    from scipy import ndimage

    image = synthetic.render_cells(shape=(300, 200), channels=1, seed=3)[0]
    stats = metrics.channel_stats(image)
    lo, hi = stats.percentile(0.1), stats.percentile(99.9)
    normalised = np.clip((image.astype(np.float64) - lo) / (hi - lo), 0, 1)
    expected = ndimage.laplace(normalised)[1:-1, 1:-1].var()
    assert metrics.focus_measure(image, block_rows=7) == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize(("dtype", "full"), [(np.uint8, 255), (np.uint16, 65535)])
def test_saturated_fraction_counts_pixels_at_full_scale(dtype, full):
    image = np.full((100, 100), 10, dtype=dtype)
    image.ravel()[:137] = full
    assert metrics.saturated_fraction(image) == pytest.approx(137 / 10000)


def test_saturated_fraction_of_several_channels_is_the_worst_channel():
    data = np.zeros((2, 50, 50), dtype=np.uint16)
    data[0, :5] = 65535  # 10 %
    data[1, :1] = 65535  # 2 %
    result = metrics.compute_metrics(data)
    assert result["saturated_fraction"] == pytest.approx(0.10)
    assert [c["saturated_fraction"] for c in result["per_channel"]] == pytest.approx([0.10, 0.02])


def test_coverage_of_drawn_discs_is_their_area():
    image, truth = synthetic.render_discs(discs=[(64, 64, 20), (150, 150, 30), (200, 60, 10)])
    assert metrics.coverage_fraction(image) == pytest.approx(truth)


def test_coverage_of_discs_under_noise_is_within_half_a_percent():
    image, truth = synthetic.render_discs(discs=[(64, 64, 20), (150, 150, 30), (200, 60, 10)], noise=2000)
    assert metrics.coverage_fraction(image) == pytest.approx(truth, abs=0.005)


def test_coverage_in_bright_field_counts_dark_objects():
    image, truth = synthetic.render_discs(discs=[(80, 80, 40)], background=30000, level=5000)
    assert metrics.coverage_fraction(image, bright_foreground=False) == pytest.approx(truth)
    result = metrics.compute_metrics(image[np.newaxis], bright_foreground=False)
    assert result["coverage_fraction"] == pytest.approx(truth)


def test_coverage_of_an_empty_image_is_zero():
    assert metrics.coverage_fraction(np.full((20, 20), 3, np.uint16)) == 0.0


def test_coverage_of_several_channels_is_their_union():
    a, _ = synthetic.render_discs(shape=(100, 100), discs=[(25, 25, 10)])
    b, _ = synthetic.render_discs(shape=(100, 100), discs=[(75, 75, 10)])
    _, union = synthetic.render_discs(shape=(100, 100), discs=[(25, 25, 10), (75, 75, 10)])
    assert metrics.compute_metrics(np.stack([a, b]))["coverage_fraction"] == pytest.approx(union)


def test_otsu_splits_two_levels_between_them():
    values = np.array([10.0, 10.0, 10.0, 90.0, 90.0])
    threshold = metrics.otsu_threshold(np.ones(5), values)
    assert 10 <= threshold < 90


BROKEN = {(0, 0), (3, 4), (7, 7), (5, 1), (2, 2)}


def test_atlas_counts_squares_broken_film_and_spots():
    atlas = synthetic.render_atlas(broken=BROKEN, spots=[(1, 1), (4, 4), (6, 2)])
    found = metrics.atlas_metrics(atlas.image)
    assert found.squares_found == 64
    assert found.broken_squares == 5
    assert found.intact_fraction == pytest.approx(59 / 64)
    assert found.contamination_spots == 3


@pytest.mark.parametrize("broken", [0, 1, 20, 40, 63])
def test_atlas_intact_fraction_for_any_share_of_broken_squares(broken):
    squares = [(r, c) for r in range(8) for c in range(8)]
    atlas = synthetic.render_atlas(broken=squares[:broken], seed=broken)
    found = metrics.atlas_metrics(atlas.image)
    assert found.squares_found == 64
    assert found.intact_fraction == pytest.approx((64 - broken) / 64)


def test_atlas_spots_lighter_than_the_bars_are_found_too():
    atlas = synthetic.render_atlas(rows=5, columns=6, spots=[(1, 1), (3, 4)], spot_level=15000)
    found = metrics.atlas_metrics(atlas.image)
    assert (found.squares_found, found.contamination_spots) == (30, 2)


def test_atlas_metrics_appear_in_compute_metrics_only_for_atlases():
    atlas = synthetic.render_atlas(rows=4, columns=4, broken={(0, 0)})
    data = atlas.image[np.newaxis]
    assert "squares_found" not in metrics.compute_metrics(data)
    result = metrics.compute_metrics(data, atlas=True, bright_foreground=False)
    assert (result["squares_found"], result["intact_fraction"]) == (16, pytest.approx(15 / 16))
    assert result["version"] == metrics.METRICS_VERSION


def test_compute_metrics_reports_progress_to_the_end():
    seen = []
    metrics.compute_metrics(np.zeros((3, 8, 8), np.uint16), progress=seen.append)
    assert seen[-1] == pytest.approx(1.0) and seen == sorted(seen)


def test_focus_refuses_a_too_small_image():
    with pytest.raises(ValueError, match="at least 3"):
        metrics.focus_measure(np.zeros((2, 10), np.uint16))
