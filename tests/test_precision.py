"""Training precision: fp32, bf16 autocast, or auto (bf16 where the device computes it natively)."""

from __future__ import annotations

import pytest
import torch

from lfcomp.engine.device import bf16_supported, resolve_precision
from lfcomp.errors import LfcompError


def test_auto_is_bf16_only_where_native() -> None:
    cpu = torch.device("cpu")
    assert resolve_precision("auto", cpu) == ("bf16" if bf16_supported(cpu) else "fp32")
    assert resolve_precision("fp32", cpu) == "fp32" and resolve_precision("bf16", cpu) == "bf16"


def test_unknown_precision_is_a_one_line_error() -> None:
    with pytest.raises(LfcompError, match=r"train.precision: unknown precision 'fp16' \(choose from fp32, bf16, auto\)"):
        resolve_precision("fp16", torch.device("cpu"))
