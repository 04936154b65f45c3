"""One exception type for every user-facing failure: it names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class LfcompError(Exception):
    """A clean, one-line error about an input or output file (or an argument).

    The CLI prints ``lfcomp: error: <where>: <problem>`` and exits non-zero without a traceback.
    """

    def __init__(self, where: str | Path, problem: str) -> None:
        self.where = str(where)
        self.problem = problem
        super().__init__(f"{self.where}: {problem}")
