"""The ``.lfc`` bitstream: a compact, versioned, checksummed container for a quantized model.

The container is generic: the quantization code decides what goes in the JSON header and the named
arrays; this module only stores them compactly and reads them back bit-exactly.

Byte layout, format version 1 ("varint" = unsigned LEB128; "deflate" = raw DEFLATE, zlib level 9)::

    magic       3 B         b"LFC"
    version     1 B         1 (any other value is refused)
    sizes       5 varints   byte sizes of the five sections below, in order
    header      deflate(compact UTF-8 JSON [header, float32 specs, uint16 specs]),
                            specs = [[name, shape], ...] in storage order
    float32     the float32 arrays, C order, little-endian, concatenated in spec order
    uint16      the uint16 arrays, likewise
    code table  deflate(varint count, varint n, 1 B pad, n varint gaps, n B code lengths):
                            count = symbols, n = distinct symbols, pad = zero bits ending the
                            payload, gaps = first symbol, then (symbol - previous - 1)
    payload     canonical Huffman codewords of the symbols (lfcomp.entropy.huffman), MSB first
    crc32       4 B         zlib.crc32 of every byte before it, little-endian

Format version 2 (codecs with their own entropy coder, e.g. a range coder) has the same magic,
framing and CRC, and four sections: header, float32, uint16 as above, then ``data``, the codec's
own coded bytes (the header's ``codec`` key names the codec). Version 1 streams stay readable.

An empty payload costs 28 bytes. The section sizes in the fixed part give the expected total size
up front (clean "truncated" errors); the CRC is then checked before any section is parsed, and
the parser still validates every size against the data before allocating, so a crafted stream
with a valid CRC fails cleanly too.
"""

from __future__ import annotations

import json
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lfcomp.artifacts import atomic_output
from lfcomp.entropy.huffman import huffman_decode, huffman_encode
from lfcomp.errors import LfcompError

MAGIC = b"LFC"
FORMAT_VERSION = 1  # Huffman-coded symbols (QDLR)
DATA_VERSION = 2  # the codec's own coded bytes
SECTIONS = ("header", "float32", "uint16", "code_table", "payload")
DATA_SECTIONS = ("header", "float32", "uint16", "data")
VERSIONS = {FORMAT_VERSION: SECTIONS, DATA_VERSION: DATA_SECTIONS}
_CRC_BYTES = 4
_MAX_NDIM = 32
_MAX_ELEMENTS = 2**48  # per array, counting zero dimensions as 1: keeps numpy shapes sane


@dataclass(eq=False)
class CodecPayload:
    """Everything a decoder needs, as filled by the quantization code."""

    header: dict  # JSON-native: model kind, architecture, tensor layout, light field geometry, ...
    float32: dict[str, np.ndarray]  # camera f, Δ, codebook, quantizer ranges, ...
    uint16: dict[str, np.ndarray]  # 16-bit bias codes, stored raw
    symbols: np.ndarray  # 1-D ints: labels 0..N-1 and N+q outlier codes (decoded as int64); version 1
    data: bytes | None = None  # the codec's own coded bytes: version 2 (then ``symbols`` is empty)


class _Corrupt(Exception):
    """Internal parse failure; becomes ``LfcompError(source, problem)`` at the API boundary."""


class _Truncated(_Corrupt):
    """A varint runs past the end of its buffer."""


# ---------------------------------------------------------------------------------------------
# Small codecs


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _read_varint(buf: bytes, pos: int, what: str) -> tuple[int, int]:
    """Read one varint at ``pos``; return (value, next position)."""
    value = 0
    for shift in range(0, 64, 7):
        if pos >= len(buf):
            raise _Truncated(f"corrupted {what} (truncated varint)")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
    raise _Corrupt(f"corrupted {what} (overlong varint)")


def _deflate(raw: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
    return packer.compress(raw) + packer.flush()


def _inflate(buf: bytes, what: str) -> bytes:
    """Inflate one complete raw DEFLATE stream, output bounded by DEFLATE's maximum ratio."""
    unpacker = zlib.decompressobj(-15)
    try:
        raw = unpacker.decompress(buf, 1032 * len(buf) + 64)
    except zlib.error:
        raise _Corrupt(f"corrupted {what} (bad DEFLATE data)") from None
    if not unpacker.eof or unpacker.unused_data or unpacker.unconsumed_tail:
        raise _Corrupt(f"corrupted {what} (bad DEFLATE data)")
    return raw


# ---------------------------------------------------------------------------------------------
# Encoding


def _pack_arrays(arrays: dict[str, np.ndarray], dtype: type, kind: str) -> tuple[list, bytes]:
    """Specs ``[[name, shape], ...]`` and the concatenated little-endian bytes of ``arrays``."""
    specs, chunks = [], []
    for name, value in arrays.items():
        array = np.asarray(value)
        if not isinstance(name, str):
            raise ValueError(f"{kind} array names must be strings, got {name!r}")
        if array.dtype != dtype:
            raise ValueError(f"{kind} array {name!r} has dtype {array.dtype}, expected {kind}")
        specs.append([name, list(array.shape)])
        chunks.append(array.astype(np.dtype(dtype).newbyteorder("<"), order="C").tobytes())
    return specs, b"".join(chunks)


def _header_json(header: dict, float32_specs: list, uint16_specs: list) -> bytes:
    """Compact JSON of the header and array specs; the header must survive a JSON round trip."""
    if not isinstance(header, dict):
        raise ValueError(f"header must be a dict, got {type(header).__name__}")
    try:
        text = json.dumps([header, float32_specs, uint16_specs], separators=(",", ":"),
                          ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"header is not JSON-serialisable: {exc}") from None
    if json.loads(text)[0] != header:
        raise ValueError("header does not survive a JSON round trip (use str keys, lists not tuples)")
    return text.encode("utf-8")


def _code_table(alphabet: np.ndarray, lengths: np.ndarray, count: int, pad: int) -> bytes:
    gaps = np.diff(alphabet.astype(np.int64), prepend=-1) - 1
    parts = [_varint(count), _varint(len(alphabet)), bytes([pad])]
    parts += [_varint(gap) for gap in gaps.tolist()]
    parts.append(lengths.astype(np.uint8).tobytes())
    return b"".join(parts)


def encode_payload(p: CodecPayload) -> bytes:
    """Serialise ``p`` into an ``.lfc`` bitstream: version 1 (Huffman-coded ``symbols``) or, when
    ``p.data`` is given, version 2 (ValueError on an invalid payload)."""
    float32_specs, float32_bytes = _pack_arrays(p.float32, np.float32, "float32")
    uint16_specs, uint16_bytes = _pack_arrays(p.uint16, np.uint16, "uint16")
    sections = [_deflate(_header_json(p.header, float32_specs, uint16_specs)), float32_bytes, uint16_bytes]
    if p.data is not None:
        version = DATA_VERSION
        sections.append(bytes(p.data))
    else:
        version = FORMAT_VERSION
        coded = huffman_encode(p.symbols)
        pad = -coded.num_bits % 8
        sections += [_deflate(_code_table(*coded.lengths, coded.count, pad)), coded.payload]
    return join_sections(version, sections)


def join_sections(version: int, sections: list[bytes]) -> bytes:
    """Frame sections into a bitstream: magic, version, section sizes, the sections, CRC-32."""
    body = b"".join([MAGIC, bytes([version]), *map(_varint, map(len, sections)), *sections])
    return body + zlib.crc32(body).to_bytes(_CRC_BYTES, "little")


def split_sections(data: bytes, source: str = "<bytes>") -> tuple[int, dict[str, bytes]]:
    """The version and the raw sections of a framed bitstream (its framing and CRC checked only)."""
    try:
        sections = _split(bytes(data))
    except _Corrupt as exc:
        raise LfcompError(source, str(exc)) from None
    return data[len(MAGIC)], sections


# ---------------------------------------------------------------------------------------------
# Decoding


def _split(data: bytes) -> dict[str, bytes]:
    """Check framing (magic, version, sizes, CRC) and cut the sections out of ``data``."""
    if not data:
        raise _Corrupt("empty file (not an lfcomp bitstream)")
    if data[: len(MAGIC)] != MAGIC[: len(data)]:
        raise _Corrupt("not an lfcomp bitstream (bad magic)")
    minimum = len(MAGIC) + 1 + len(DATA_SECTIONS) + _CRC_BYTES
    if len(data) <= len(MAGIC):
        raise _Corrupt(f"truncated bitstream (expected at least {minimum} bytes, got {len(data)})")
    version = data[len(MAGIC)]
    if version not in VERSIONS:
        readable = ", ".join(map(str, VERSIONS))
        raise _Corrupt(f"unsupported bitstream version {version} (this lfcomp reads {readable})")
    names = VERSIONS[version]
    pos = len(MAGIC) + 1
    sizes = []
    for _ in names:
        try:
            size, pos = _read_varint(data, pos, "fixed header")
        except _Truncated:
            problem = f"truncated bitstream (ends inside its fixed header, got {len(data)} bytes)"
            raise _Corrupt(problem) from None
        sizes.append(size)
    expected = pos + sum(sizes) + _CRC_BYTES
    if len(data) < expected:
        raise _Corrupt(f"truncated bitstream (expected {expected} bytes, got {len(data)})")
    if len(data) > expected:
        raise _Corrupt(f"trailing bytes (expected {expected} bytes, got {len(data)})")
    if zlib.crc32(data[:-_CRC_BYTES]) != int.from_bytes(data[-_CRC_BYTES:], "little"):
        raise _Corrupt("checksum mismatch (corrupted bitstream)")
    sections = {}
    for name, size in zip(names, sizes):
        sections[name] = data[pos : pos + size]
        pos += size
    return sections


def _is_spec(spec: object) -> bool:
    return (
        isinstance(spec, list)
        and len(spec) == 2
        and isinstance(spec[0], str)
        and isinstance(spec[1], list)
        and len(spec[1]) <= _MAX_NDIM
        and all(type(d) is int and d >= 0 for d in spec[1])
        and math.prod(max(d, 1) for d in spec[1]) <= _MAX_ELEMENTS
    )


def _parse_header(buf: bytes) -> tuple[dict, list, list]:
    try:
        obj = json.loads(_inflate(buf, "header").decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise _Corrupt("corrupted header (bad JSON)") from None
    if not (isinstance(obj, list) and len(obj) == 3 and isinstance(obj[0], dict)):
        raise _Corrupt("corrupted header (unexpected structure)")
    header, float32_specs, uint16_specs = obj
    for specs in (float32_specs, uint16_specs):
        if not (isinstance(specs, list) and all(_is_spec(s) for s in specs)):
            raise _Corrupt("corrupted header (bad array specs)")
        if len({name for name, _ in specs}) != len(specs):
            raise _Corrupt("corrupted header (duplicate array names)")
    return header, float32_specs, uint16_specs


def _unpack_arrays(buf: bytes, specs: list, dtype: type, kind: str) -> dict[str, np.ndarray]:
    itemsize = np.dtype(dtype).itemsize
    sizes = [math.prod(shape) for _, shape in specs]
    needed = sum(sizes) * itemsize
    if needed != len(buf):
        raise _Corrupt(f"corrupted header ({kind} arrays need {needed} bytes, section has {len(buf)})")
    arrays, pos = {}, 0
    stored = np.dtype(dtype).newbyteorder("<")
    for (name, shape), size in zip(specs, sizes):
        chunk = buf[pos : pos + size * itemsize]
        arrays[name] = np.frombuffer(chunk, dtype=stored).astype(dtype).reshape(shape)
        pos += size * itemsize
    return arrays


def _parse_symbols(table_buf: bytes, payload: bytes) -> np.ndarray:
    table = _inflate(table_buf, "code table")
    count, pos = _read_varint(table, 0, "code table")
    n, pos = _read_varint(table, pos, "code table")
    if pos + 1 + 2 * n > len(table):  # each entry takes at least one gap byte and one length byte
        raise _Corrupt("corrupted code table (too short for its entries)")
    pad = table[pos]
    pos += 1
    gaps = []
    for _ in range(n):
        gap, pos = _read_varint(table, pos, "code table")
        gaps.append(gap)
    if pos + n != len(table):
        raise _Corrupt("corrupted code table (size mismatch)")
    if n and sum(gaps) + n - 1 >= 2**32:  # the last symbol
        raise _Corrupt("corrupted code table (symbol out of range)")
    alphabet = np.cumsum(np.array(gaps, dtype=np.int64) + 1) - 1
    lengths = np.frombuffer(table, dtype=np.uint8, offset=pos)
    if pad > 7 or (pad and not payload):
        raise _Corrupt("corrupted code table (bad padding)")
    try:
        return huffman_decode((alphabet, lengths), payload, 8 * len(payload) - pad, count)
    except ValueError as exc:
        raise _Corrupt(f"corrupted Huffman data ({exc})") from None


def decode_payload(data: bytes, source: str = "<bytes>") -> CodecPayload:
    """Parse an ``.lfc`` bitstream; any problem raises ``LfcompError(source, ...)``."""
    try:
        sections = _split(bytes(data))
        header, float32_specs, uint16_specs = _parse_header(sections["header"])
        float32 = _unpack_arrays(sections["float32"], float32_specs, np.float32, "float32")
        uint16 = _unpack_arrays(sections["uint16"], uint16_specs, np.uint16, "uint16")
        if "data" in sections:
            return CodecPayload(header, float32, uint16, np.zeros(0, dtype=np.int64), sections["data"])
        symbols = _parse_symbols(sections["code_table"], sections["payload"])
    except _Corrupt as exc:
        raise LfcompError(source, str(exc)) from None
    return CodecPayload(header, float32, uint16, symbols)


def bitstream_breakdown(data: bytes, source: str = "<bytes>") -> dict[str, int]:
    """Bytes per section (header, float32, uint16, then code_table and payload, or data) and framing;
    they sum to len(data)."""
    try:
        sections = _split(bytes(data))
    except _Corrupt as exc:
        raise LfcompError(source, str(exc)) from None
    sizes = {name: len(section) for name, section in sections.items()}
    sizes["framing"] = len(data) - sum(sizes.values())
    return sizes


def write_bitstream(data: bytes, path: str | Path) -> int:
    """Write an encoded bitstream atomically to ``path``; return its size in bytes."""
    try:
        with atomic_output(path) as tmp:
            tmp.write_bytes(data)
    except OSError as exc:
        raise LfcompError(path, f"cannot write ({exc.strerror or exc})") from None
    return len(data)


def read_bitstream(path: str | Path) -> CodecPayload:
    """Read and decode the ``.lfc`` file at ``path``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise LfcompError(path, "no such file") from None
    except IsADirectoryError:
        raise LfcompError(path, "is a directory, not a bitstream") from None
    except OSError as exc:
        raise LfcompError(path, f"cannot read ({exc.strerror or exc})") from None
    return decode_payload(data, str(path))
