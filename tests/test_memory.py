"""The peak memory backtest and daily report (issue 21): the process's own high-water mark and its workers'."""

from __future__ import annotations

import subprocess
import sys

from nbaprops.memory import peak_memory


def test_a_worker_process_peak_is_reported_once_it_has_ended() -> None:
    """A child that held 300 MB for a moment counts, though nothing sampled it: the kernel's high-water mark."""
    holds = "block = bytearray(300 * 1024 * 1024); block[::4096] = b'x' * len(block[::4096])"
    subprocess.run([sys.executable, "-c", holds], check=True)
    peak = peak_memory()
    assert peak["peak_worker_rss_mb"] is not None and peak["peak_worker_rss_mb"] >= 300
    assert peak["peak_rss_mb"] is not None and peak["peak_rss_mb"] > 10
