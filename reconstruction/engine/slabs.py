"""Slab processing: reconstruct a volume a few slices at a time in bounded memory.

Single-axis parallel-beam slices are independent problems, and every kernel in the engine treats
each slice with the same arithmetic whatever the slab it is in (slices are the innermost, vectorised
axis; per-slice scalars such as CGLS step lengths are computed per slice), so a volume made in slabs
equals one made in one piece, bit for bit.
"""

from __future__ import annotations

from collections.abc import Iterator

__all__ = ["DEFAULT_SLAB_BYTES", "iter_slabs", "slab_size_for"]

#: Working memory aimed at per slab (bytes), for the default slab size.
DEFAULT_SLAB_BYTES = 384 * 2**20


def slab_size_for(
    n_tilts: int,
    thickness: int,
    columns: int,
    rows: int,
    slab_size: int | None = None,
    *,
    arrays: int = 3,
    budget_bytes: int = DEFAULT_SLAB_BYTES,
) -> int:
    """Number of slices per slab.

    Parameters
    ----------
    n_tilts, thickness, columns, rows : int
        Problem size.
    slab_size : int, optional
        Requested size; validated and clipped to ``rows``.
    arrays : int
        Float32 working arrays of volume size plus as many of sinogram size held per slab.
    budget_bytes : int
        Memory budget used when ``slab_size`` is not given.

    Returns
    -------
    int
    """
    if slab_size is not None:
        if int(slab_size) < 1:
            raise ValueError(f"slab_size must be a positive number of slices, got {slab_size}")
        return min(int(slab_size), rows)
    per_slice = 4 * arrays * (thickness * columns + n_tilts * columns)
    size = max(1, budget_bytes // max(per_slice, 1))
    # multiples of 16 slices keep the vectorised inner loop free of remainders
    size = max(16, (size // 16) * 16) if size >= 16 else size
    return int(min(size, 64, rows))


def iter_slabs(rows: int, slab_size: int) -> Iterator[tuple[int, int]]:
    """Yield ``(start, stop)`` row ranges covering ``range(rows)`` in steps of ``slab_size``."""
    for r0 in range(0, rows, slab_size):
        yield r0, min(rows, r0 + slab_size)
