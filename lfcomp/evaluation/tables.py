"""The one table writer of the summaries and reports: cells, Markdown tables, CSV and text files.

Every table of ``summarize`` and ``build_report`` formats its numbers with ``fmt`` (a missing or
non-finite value is a dash), lays out its Markdown with ``markdown_table`` and is written
atomically (``lfcomp.artifacts.atomic_output``), so that a failed run never leaves half a file.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from lfcomp.artifacts import atomic_output

__all__ = ["MISSING", "fmt", "markdown_table", "write_csv", "write_text"]

MISSING = "–"  # the cell of a value that is missing or not finite


BELOW = "†"  # after a PSNR below one of the scene's trivial floors (lfcomp.evaluation.floors)


def fmt(value: Any, digits: int | None = None, suffix: str = "") -> str:
    """A table cell: a number with ``digits`` decimals (as it is without), then ``suffix``;
    ``MISSING`` for None, inf or nan."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return MISSING
    if digits is not None and isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}{suffix}"
    return f"{value}{suffix}"


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[str]], align: str) -> list[str]:
    """The lines of a Markdown table; ``align`` has a letter per column: ``l`` (left) or ``r`` (right)."""
    if len(align) != len(header):
        raise ValueError(f"{len(header)} columns but {len(align)} alignments")
    rule = "|" + "".join("---:|" if a == "r" else "---|" for a in align)
    return [_line(header), rule] + [_line(row) for row in rows]


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def write_csv(rows: Iterable[Mapping[str, Any]], columns: Sequence[str], path: str | Path) -> None:
    """CSV with exactly ``columns`` (other keys ignored, None and absent keys empty), written atomically."""
    with atomic_output(path) as tmp:
        with open(tmp, "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(columns), lineterminator="\n", extrasaction="ignore")
            writer.writeheader()
            for row in rows:
                writer.writerow({k: "" if row.get(k) is None else row[k] for k in columns})


def write_text(text: str, path: str | Path) -> None:
    """``text``, ending in a newline, written atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(text if text.endswith("\n") else text + "\n")
