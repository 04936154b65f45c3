"""The allocator setting of every ``lfcomp`` command (``lfcomp.engine.memory``): freed buffers of a
few MiB are reused instead of being mapped and page-faulted afresh."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Allocates, writes and frees buffers of 3-9 MiB (a render chunk's activations), and prints the
# page faults that cost.
CHURN = """
import resource, sys
import numpy as np
if sys.argv[1] == "keep":
    from lfcomp.engine.memory import keep_freed_memory
    assert keep_freed_memory()
start = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for i in range(50):
    a = np.ones((3 << 20) // 8 * (1 + i % 3))
    b = np.ones(40 << 17)
    del a, b
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - start)
"""


def _faults(mode: str) -> int:
    return int(subprocess.run([sys.executable, "-c", CHURN, mode], capture_output=True, text=True,
                              check=True).stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_freed_buffers_are_reused_instead_of_faulted_again() -> None:
    default, kept = _faults("default"), _faults("keep")
    assert kept * 4 < default, (kept, default)


def test_the_cli_sets_the_allocator(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib

    cli = importlib.import_module("lfcomp.cli.main")

    called = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: called.append(True) or True)
    assert cli.main(["decode", "/nonexistent.lfc", "/tmp/never.zarr"]) == 2
    assert called == [True]
