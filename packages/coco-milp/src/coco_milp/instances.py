"""Balas-Ho set cover instances (Ecole's / Gasse et al.'s generator, re-implemented in numpy).

Ecole does not install here (sdist only), so the generator is re-written from its published algorithm
(Balas & Ho, 1980; ecole.instance.SetCoverGenerator): `min c^T x  s.t.  A x >= 1, x in {0,1}^n` with a
0/1 matrix A of the given density, every column covering at least two rows, every row covered by at least
one column, and integer costs uniform in 1..max_coef.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from xentlab.data.cache import source_digest

SOURCE_DIGEST = source_digest(__file__)
"""hash of this file as imported: part of the data cache key (``coco_milp.data.code_version``)"""


@dataclass(frozen=True)
class SetCover:
    """One instance: `A` (n_rows x n_cols, 0/1 int8), `c` (n_cols, int costs); constraints A x >= 1."""

    A: np.ndarray
    c: np.ndarray

    @property
    def n_rows(self) -> int:
        return self.A.shape[0]

    @property
    def n_cols(self) -> int:
        return self.A.shape[1]


def generate_set_cover(
    n_rows: int, n_cols: int, density: float, rng: np.random.Generator, max_coef: int = 100
) -> SetCover:
    """Balas-Ho generator, column by column as in Ecole's SetCoverGenerator."""
    nnz = int(n_rows * n_cols * density)
    if nnz < n_rows or nnz < 2 * n_cols:
        raise ValueError(
            f"density {density} too low for {n_rows}x{n_cols}: need nnz={nnz} >= n_rows and >= 2*n_cols"
        )
    # column index of every nonzero: each column at least twice, the rest uniform
    cols = rng.integers(0, n_cols, size=nnz)
    cols[: 2 * n_cols] = np.repeat(np.arange(n_cols), 2)
    col_counts = np.bincount(cols, minlength=n_cols)
    # row indices laid out column after column (CSC order); the first n_rows slots are a permutation of the
    # rows so that every row is covered at least once
    rows = np.empty(nnz, dtype=np.int64)
    rows[:n_rows] = rng.permutation(n_rows)
    start = 0
    for n in col_counts:
        end = start + n
        if start >= n_rows:  # column entirely past the forced permutation: random distinct rows
            rows[start:end] = rng.choice(n_rows, size=n, replace=False)
        elif end > n_rows:  # partially filled: complete with distinct rows not already in this column
            remaining = np.setdiff1d(np.arange(n_rows), rows[start:n_rows])
            rows[n_rows:end] = rng.choice(remaining, size=end - n_rows, replace=False)
        start = end
    col_of = np.repeat(np.arange(n_cols), col_counts)
    A = np.zeros((n_rows, n_cols), dtype=np.int8)
    A[rows, col_of] = 1
    c = rng.integers(0, max_coef, size=n_cols) + 1
    return SetCover(A=A, c=c.astype(np.int64))
