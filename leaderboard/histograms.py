"""The rollups' histogram codec: a histogram is stored sparse, as (bin u8, count i32) pairs.

Sparse because most of the 101 score bins and 177 latency bins of a daily rollup row are empty.
Decoding sums repeated bins, so two encoded histograms concatenated decode to their sum: PostgreSQL
adds a delta to a stored histogram by appending its pairs, and the leaderboard adds a model's daily
rows by concatenating their blobs (`string_agg`).
"""

from __future__ import annotations

import numpy as np

HIST_PAIR = np.dtype([("bin", "u1"), ("count", "<i4")])


def hist_decode(blob: bytes | memoryview | None, bins: int) -> np.ndarray:
    """A dense int64 histogram from its sparse bytes."""
    dense = np.zeros(bins, dtype=np.int64)
    if blob:
        pairs = np.frombuffer(bytes(blob), dtype=HIST_PAIR)
        np.add.at(dense, pairs["bin"].astype(np.int64), pairs["count"])
    return dense


def hist_encode(dense: np.ndarray) -> bytes:
    """The sparse bytes of a dense histogram: one pair per non-empty bin, in bin order."""
    nonzero = np.flatnonzero(dense)
    pairs = np.empty(len(nonzero), dtype=HIST_PAIR)
    pairs["bin"] = nonzero
    pairs["count"] = dense[nonzero]
    return pairs.tobytes()


def hists_encode_grouped(group: np.ndarray, bins: np.ndarray, mask: np.ndarray, groups: int) -> list[bytes]:
    """Encoded sparse histograms of `bins` per group (rows where mask holds), in one vectorised pass."""
    pair_codes, counts = np.unique(group[mask] * 256 + bins[mask], return_counts=True)
    pairs = np.empty(len(pair_codes), dtype=HIST_PAIR)
    pairs["bin"] = pair_codes % 256
    pairs["count"] = counts
    bounds = np.searchsorted(pair_codes // 256, np.arange(groups + 1))
    raw = pairs.tobytes()
    size = HIST_PAIR.itemsize
    return [raw[bounds[g] * size : bounds[g + 1] * size] for g in range(groups)]
