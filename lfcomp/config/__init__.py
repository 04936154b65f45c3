"""Configuration: typed sections (``sections``), presets as instances and their resolution (``presets``)."""

from lfcomp.config.presets import PRESETS, load_preset, parse_set_option, resolve_config
from lfcomp.config.sections import (CameraConfig, Config, DistillConfig, LatentConfig, LowRankConfig, ModelConfig,
                                    QuantizeConfig, RuntimeConfig, TrainConfig, merge)

__all__ = ["PRESETS", "CameraConfig", "Config", "DistillConfig", "LatentConfig", "LowRankConfig", "ModelConfig",
           "QuantizeConfig", "RuntimeConfig", "TrainConfig", "load_preset", "merge", "parse_set_option",
           "resolve_config"]
