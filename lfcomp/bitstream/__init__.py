"""The ``.lfc`` container: magic, version, a JSON header, typed arrays, an entropy-coded payload
and a CRC; every codec's bitstream is one."""

from lfcomp.bitstream.container import (
                                       CodecPayload,
                                       bitstream_breakdown,
                                       decode_payload,
                                       encode_payload,
                                       join_sections,
                                       read_bitstream,
                                       split_sections,
                                       write_bitstream,
)

__all__ = ["CodecPayload", "bitstream_breakdown", "decode_payload", "encode_payload", "join_sections",
           "read_bitstream", "split_sections", "write_bitstream"]
