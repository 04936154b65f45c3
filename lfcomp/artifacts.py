"""Atomic artifact writing: an output exists only once it is complete.

Every stage writes into a temporary sibling (``.NAME.partial-PID``) and renames it into place
when done, so a failed or interrupted command never leaves a file that a later run (or
Snakemake) could mistake for a good artifact.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_output(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write ``path`` into (file or directory); publish it on success.

    On any exception (including KeyboardInterrupt) the temporary is removed and ``path`` is left
    as it was before: absent, or the previous complete version. A hard kill leaves at most hidden
    ``.NAME.partial-PID`` / ``.NAME.old-PID`` siblings, never an incomplete ``path``.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.partial-{os.getpid()}")
    old = final.with_name(f".{final.name}.old-{os.getpid()}")
    _remove(tmp)
    _remove(old)
    try:
        yield tmp
        if not tmp.exists():
            raise RuntimeError(f"{final}: stage produced no output")
        if final.is_dir() and not final.is_symlink():
            # a directory cannot be replaced in one step: move the previous version aside (atomic)
            # rather than deleting it in place, which a hard kill (SIGKILL) could leave half done
            os.replace(final, old)
        os.replace(tmp, final)
    except BaseException:
        _remove(tmp)
        if old.exists() and not final.exists():
            os.replace(old, final)  # the previous version, back in place
        raise
    _remove(old)
