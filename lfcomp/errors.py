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


def short_repr(value: object, limit: int = 40) -> str:
    """``repr(value)``, cut to ``limit`` characters: an untrusted value quoted in a one-line error."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def key_mismatch(found: object, expected: set[str], what: str) -> str | None:
    """A short description of how the keys of an untrusted mapping differ from ``expected``
    (None when they match): what is missing and (up to three, truncated) unknown keys."""
    if not isinstance(found, dict):
        return f"{what} is a {type(found).__name__}, not an object"
    keys = set(found)
    if keys == expected:
        return None
    missing = sorted(expected - keys)
    extra = sorted(repr(k)[:20] for k in keys - expected)
    parts = [f"lacks {', '.join(missing)}" if missing else "",
             f"has unknown keys {', '.join(extra[:3])}{' ...' if len(extra) > 3 else ''}" if extra else ""]
    return f"{what} " + "; ".join(p for p in parts if p)
