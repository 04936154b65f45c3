"""The registries are the one list of model kinds, codecs and presets: the config schema, the CLI
and the workflow must agree with them."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import yaml

from lfcomp.cli.main import command_table
from lfcomp.codecs.registry import CODECS, codec_labels, parse_label
from lfcomp.config import PRESETS
from lfcomp.config.sections import SECTIONS
from lfcomp.models.registry import MODEL_KINDS

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = yaml.safe_load((ROOT / "schemas" / "config.schema.yaml").read_text())


def test_schema_enums_are_the_registries():
    defs, props = SCHEMA["$defs"], SCHEMA["properties"]
    kinds = list(MODEL_KINDS)
    others = [name for name, codec in CODECS.items() if not codec.model_kinds]  # run through `codecs:`
    assert props["models"]["items"]["enum"] == kinds
    assert props["codecs"]["items"]["enum"] == others
    assert list(defs["model_rate_points"]["properties"]) == kinds + others
    assert set(defs["stage_params"]["properties"]) == set(defs["stage_sections"]["properties"]) | set(kinds)
    # an anchor's folder may not be named like a kind's or a codec's
    assert props["anchors"]["propertyNames"]["not"]["enum"] == kinds + others
    assert props["preset"]["enum"] == list(PRESETS)
    assert list(props["rate_points"]["properties"]) == list(PRESETS)
    assert set(defs["stage_sections"]["properties"]) == set(SECTIONS) - {"runtime"}
    qdlr = CODECS["qdlr"]
    assert len(defs["rate_point"]["prefixItems"]) == len(qdlr.rate_parameters)


def test_every_codec_stage_is_a_cli_command_reading_known_sections():
    table = command_table()
    for codec in CODECS.values():
        own = [c.name for c in importlib.import_module(f"{codec.package}.commands").COMMANDS]
        for stage in codec.stages:
            assert stage.name in table, stage.name
            assert {section.split('.')[0] for section in stage.sections} <= set(SECTIONS)
        assert set(own) <= {stage.name for stage in codec.stages}
        importlib.import_module(codec.decoder).decoded_model  # noqa: B018  (the decoder entry point exists)


def test_labels_round_trip_and_qdlr_titles():
    assert codec_labels()[:2] == ["qdlr-nerf", "qdlr-nelf"]
    for label in codec_labels():
        codec, kind = parse_label(label)
        assert codec.label(kind) == label
    assert parse_label("hevc444") is None
    qdlr = CODECS["qdlr"]
    assert qdlr.stage_titles("nerf") == {"nerf": "NeRF-org", "lowrank": "LR-NeRF", "distill": "DLR-NeRF",
                                         "quantize": "QDLR-NeRF"}
    assert qdlr.rate_point_dir({"rank": 22, "centroids": 256}) == "r22/n256"
    assert qdlr.rate_point_label({"rank": 22, "centroids": 256}) == "r22-n256"


def test_registries_and_config_import_without_torch():
    # Snakemake reads them at start-up; torch would cost seconds on every dry-run.
    code = ("import sys; import lfcomp.codecs.registry, lfcomp.models.registry, lfcomp.config; "
            "sys.exit('torch' in sys.modules)")
    import subprocess

    assert subprocess.run([sys.executable, "-c", code]).returncode == 0
