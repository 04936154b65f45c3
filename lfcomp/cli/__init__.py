"""The ``lfcomp`` command line."""

from lfcomp.cli.main import main

__all__ = ["main"]
