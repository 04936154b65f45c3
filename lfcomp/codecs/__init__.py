"""Codecs: ``registry`` (every codec: its stages, rate parameters, labels), ``decoder`` (any
codec's bitstream → views) and one package per codec (``qdlr``: the paper's). Adding a codec is
its package plus one registry entry."""

from lfcomp.codecs.registry import CODECS, Codec, RateParameter, Stage, codec_labels, get_codec, parse_label

__all__ = ["CODECS", "Codec", "RateParameter", "Stage", "codec_labels", "get_codec", "parse_label"]
