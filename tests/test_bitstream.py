"""The .lfc container: bit-exact round trips, size accounting, and clean LfcompError on bad input."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest

from lfcomp.bitstream.container import (
    CodecPayload,
    bitstream_breakdown,
    decode_payload,
    encode_payload,
    read_bitstream,
    write_bitstream,
)
from lfcomp.errors import LfcompError


def _realistic_payload(num_symbols: int = 50_000, seed: int = 0) -> CodecPayload:
    rng = np.random.default_rng(seed)
    codebook = 256
    labels = np.clip(np.round(rng.laplace(0, 20, num_symbols)) + 128, 0, codebook - 1).astype(np.int64)
    outliers = rng.random(num_symbols) < 0.005
    labels[outliers] = codebook + rng.integers(0, 65536, int(outliers.sum()))
    special = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45], dtype=np.float32)
    special[4:5].view(np.uint32)[0] = 0x7FC12345  # a NaN with a payload must survive bit-exactly
    return CodecPayload(
        header={
            "model": "qdlr-nerf",
            "layers": [{"name": f"fc{i}", "shape": [256, 256], "rank": 32} for i in range(3)],
            "grid": [[9, 9], [434, 625]],
            "note": "Δ é ✓",
            "flags": [True, False, None],
            "scale": 0.1,
        },
        float32={
            "f": np.array(3.25, dtype=np.float32),  # 0-d
            "delta": rng.standard_normal((9, 9, 2)).astype(np.float32),
            "codebook": np.sort(rng.uniform(-1, 1, codebook)).astype(np.float32),
            "empty": np.zeros((0, 3), dtype=np.float32),
            "special": special,
        },
        uint16={
            "bias0": rng.integers(0, 65536, 256, dtype=np.uint16),
            "bias1": rng.integers(0, 65536, (4, 3), dtype=np.uint16),
            "none": np.zeros(0, dtype=np.uint16),
        },
        symbols=labels,
    )


def _small_stream() -> bytes:
    return encode_payload(
        CodecPayload(
            {"k": [1, 2]},
            {"f": np.array([1.5, -2.0], np.float32)},
            {"b": np.array([7, 65535], np.uint16)},
            np.array([0, 1, 1, 2, 300, 1, 0, 1]),
        )
    )


def _assert_same(a: CodecPayload, b: CodecPayload) -> None:
    assert a.header == b.header
    for kind in ("float32", "uint16"):
        x, y = getattr(a, kind), getattr(b, kind)
        assert list(x) == list(y)
        for name in x:
            assert x[name].dtype == y[name].dtype and x[name].shape == y[name].shape
            assert x[name].tobytes() == y[name].tobytes()
    assert np.array_equal(a.symbols, b.symbols)


# --- round trips and accounting ------------------------------------------------------------------


def test_round_trip_is_bit_exact() -> None:
    payload = _realistic_payload()
    data = encode_payload(payload)
    decoded = decode_payload(data)
    _assert_same(payload, decoded)
    assert decoded.symbols.dtype == np.int64
    assert decoded.float32["f"].shape == ()
    assert decoded.float32["delta"].flags.writeable
    assert encode_payload(decoded) == data


def test_empty_payload_round_trip_and_overhead() -> None:
    payload = CodecPayload({}, {}, {}, np.zeros(0, dtype=np.int64))
    data = encode_payload(payload)
    _assert_same(payload, decode_payload(data))
    assert len(data) <= 32


def test_breakdown_accounts_for_every_byte() -> None:
    payload = _realistic_payload()
    data = encode_payload(payload)
    sizes = bitstream_breakdown(data)
    assert set(sizes) == {"header", "float32", "uint16", "code_table", "payload", "framing"}
    assert sum(sizes.values()) == len(data)
    assert sizes["float32"] == 4 * sum(a.size for a in payload.float32.values())
    assert sizes["uint16"] == 2 * sum(a.size for a in payload.uint16.values())
    assert sizes["framing"] <= 4 + 5 * 3 + 4


def test_file_round_trip(tmp_path: Path) -> None:
    payload = _realistic_payload(2000)
    path = tmp_path / "sub" / "model.lfc"
    size = write_bitstream(encode_payload(payload), path)
    assert path.stat().st_size == size
    _assert_same(payload, read_bitstream(path))
    assert [p.name for p in path.parent.iterdir()] == ["model.lfc"]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(LfcompError, match="no such file") as info:
        read_bitstream(tmp_path / "absent.lfc")
    assert info.value.where == str(tmp_path / "absent.lfc")
    with pytest.raises(LfcompError, match="directory"):
        read_bitstream(tmp_path)


@pytest.mark.parametrize(
    "payload",
    [
        CodecPayload({"t": (1, 2)}, {}, {}, np.zeros(0, np.int64)),  # tuple would come back as a list
        CodecPayload({1: "x"}, {}, {}, np.zeros(0, np.int64)),
        CodecPayload({"x": float("nan")}, {}, {}, np.zeros(0, np.int64)),
        CodecPayload({"x": np.int64(3)}, {}, {}, np.zeros(0, np.int64)),
        CodecPayload({}, {"f": np.zeros(2, np.float64)}, {}, np.zeros(0, np.int64)),
        CodecPayload({}, {}, {"b": np.zeros(2, np.int32)}, np.zeros(0, np.int64)),
        CodecPayload({}, {}, {}, np.array([-1])),
    ],
)
def test_encode_rejects_invalid_payload(payload: CodecPayload) -> None:
    with pytest.raises(ValueError):
        encode_payload(payload)


# --- framing errors ------------------------------------------------------------------------------


def test_bad_magic_version_and_empty() -> None:
    data = _small_stream()
    with pytest.raises(LfcompError, match=r"^x\.lfc: not an lfcomp bitstream \(bad magic\)$"):
        decode_payload(b"PK\x03\x04" + data[4:], "x.lfc")
    with pytest.raises(LfcompError, match=r"unsupported bitstream version 7 \(this lfcomp reads 1, 2\)"):
        decode_payload(data[:3] + b"\x07" + data[4:])
    with pytest.raises(LfcompError, match="empty file"):
        decode_payload(b"")
    with pytest.raises(LfcompError, match="bad magic"):
        bitstream_breakdown(b"\x89PNG\r\n")


def test_every_truncation_fails_cleanly() -> None:
    data = _small_stream()
    for end in range(len(data)):
        with pytest.raises(LfcompError):
            decode_payload(data[:end])
    with pytest.raises(LfcompError, match=rf"truncated bitstream \(expected {len(data)} bytes, got {len(data) - 1}\)"):
        decode_payload(data[:-1])
    with pytest.raises(LfcompError, match="trailing bytes"):
        decode_payload(data + b"\0")


def test_random_corruptions_fail_cleanly() -> None:
    rng = np.random.default_rng(2023)
    data = _small_stream()
    for trial in range(400):
        corrupted = bytearray(data)
        kind = trial % 4
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.integers(0, len(corrupted)))
            if kind == 0:  # byte replaced by a different value
                corrupted[pos] ^= int(rng.integers(1, 256))
            elif kind == 1:  # single bit flip
                corrupted[pos] ^= 1 << int(rng.integers(0, 8))
            elif kind == 2:
                corrupted.insert(pos, int(rng.integers(0, 256)))
            else:
                del corrupted[pos]
        if bytes(corrupted) == data:
            continue
        with pytest.raises(LfcompError):
            decode_payload(bytes(corrupted))
    with pytest.raises(LfcompError, match="checksum mismatch"):
        decode_payload(data[:-5] + bytes([data[-5] ^ 1]) + data[-4:])


# --- parser validation behind a valid CRC -------------------------------------------------------
# Streams are assembled here from the documented layout, independently of the encoder.


def _varint(value: int) -> bytes:
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _deflate(raw: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, -15)
    return packer.compress(raw) + packer.flush()


def _table(count: int, symbols: list[int], lengths: list[int], pad: int) -> bytes:
    gaps = [b - a - 1 for a, b in zip([-1] + symbols, symbols)]
    return _deflate(_varint(count) + _varint(len(symbols)) + bytes([pad]) + b"".join(map(_varint, gaps)) + bytes(lengths))


GOOD = {
    "header": _deflate(b'[{"k":1},[["f",[2]]],[["b",[1]]]]'),
    "float32": np.array([1.5, 2.5], "<f4").tobytes(),
    "uint16": np.array([9], "<u2").tobytes(),
    "code_table": _table(3, [4, 9], [1, 1], 5),  # symbols 4, 9, 4 -> bits 010 + 5 pad bits
    "payload": bytes([0b01000000]),
}


def _assemble(sizes: list[int] | None = None, **sections: bytes) -> bytes:
    parts = {**GOOD, **sections}
    if sizes is None:
        sizes = [len(p) for p in parts.values()]
    body = b"LFC\x01" + b"".join(map(_varint, sizes)) + b"".join(parts.values())
    return body + zlib.crc32(body).to_bytes(4, "little")


def test_hand_assembled_stream_matches_documented_layout() -> None:
    decoded = decode_payload(_assemble())
    assert decoded.header == {"k": 1}
    assert decoded.float32["f"].tolist() == [1.5, 2.5] and decoded.uint16["b"].tolist() == [9]
    assert decoded.symbols.tolist() == [4, 9, 4]
    assert decode_payload(_assemble(code_table=_table(0, [], [], 0), payload=b"")).symbols.size == 0


def _deep_json(depth: int) -> bytes:
    return _deflate(b"[" * depth + b"]" * depth)


@pytest.mark.parametrize(
    "stream",
    [
        _assemble(sizes=[len(GOOD["header"]) + 1, 7, 2, len(GOOD["code_table"]), 1]),  # sections shifted
        _assemble(sizes=[2**62, 8, 2, 1, 1]),  # absurd length: must not allocate
        _assemble(header=b"\xff\xfe not deflate"),
        _assemble(header=_deflate(b"\xff\xfe")),  # not UTF-8
        _assemble(header=_deflate(b"{bad json")),
        _assemble(header=_deflate(b'{"k":1}')),  # not the [header, specs, specs] list
        _assemble(header=_deep_json(100_000)),
        _assemble(header=_deflate(b'[{},[["f",[3]]],[["b",[1]]]]')),  # shape disagrees with section
        _assemble(header=_deflate(b'[{},[["f",[2]]],[["b",[1]],["b",[0]]]]')),  # duplicate name
        _assemble(header=_deflate(b'[{},[["f",[2,-1]]],[["b",[1]]]]')),
        _assemble(header=_deflate(b'[{},[["f",[2, 1.0]]],[["b",[1]]]]')),
        _assemble(header=_deflate(b'[{},[["f",[2]],["z",[0,4294967296,4294967296]]],[["b",[1]]]]')),
        _assemble(header=_deflate(b'[{},[["f",[2]],["z",[0' + b",1" * 40 + b"]]],[["b",[1]]]]")),
        _assemble(header=_deflate(b'[{},[[7,[2]]],[["b",[1]]]]')),
        _assemble(header=_deflate(b"[{},[],[]]") + b"extra"),
        _assemble(code_table=b""),
        _assemble(code_table=_table(10**12, [4, 9], [1, 1], 5)),  # count far beyond the payload
        _assemble(code_table=_table(4, [4, 9], [1, 1], 5)),  # one symbol too many
        _assemble(code_table=_table(2, [4, 9], [1, 1], 5)),  # one symbol too few
        _assemble(code_table=_table(3, [4, 9], [1, 1], 9)),  # padding > 7
        _assemble(code_table=_table(3, [4, 9], [1, 1], 4)),  # bits counted wrong
        _assemble(code_table=_table(3, [4, 9, 11], [1, 1, 1], 5)),  # Kraft violated
        _assemble(code_table=_table(3, [4, 9, 11], [1, 2, 3], 5)),  # incomplete code
        _assemble(code_table=_table(3, [4, 9], [1, 0], 5)),
        _assemble(code_table=_table(3, [4, 2**32 + 5], [1, 1], 5)),  # symbol out of range
        _assemble(code_table=_deflate(_varint(3) + _varint(2**40) + b"\x05")),  # huge entry count
        _assemble(code_table=_deflate(_varint(3) + _varint(2) + b"\x05" + b"\xff" * 12 + b"\x01\x01")),
        _assemble(code_table=_deflate(_varint(3) + _varint(2) + b"\x05\x04\x04\x01\x01\x00")),  # extra byte
        _assemble(code_table=_deflate(_varint(3))),
        _assemble(code_table=_table(3, [4, 9], [1, 1], 0)),  # pad bits counted as codewords
        _assemble(payload=bytes([0b01000001])),  # non-zero padding bit
        _assemble(payload=bytes([0b01000000, 0])),  # payload longer than its bits
        _assemble(payload=b""),
        _assemble(float32=b"\0" * 7),
        _assemble(uint16=b"\0" * 4),
    ],
)
def test_crafted_streams_with_valid_crc_fail_cleanly(stream: bytes) -> None:
    with pytest.raises(LfcompError):
        decode_payload(stream)


def test_random_mutations_behind_a_valid_crc_never_escape() -> None:
    """Mutate the structured bytes (lengths, header, code table, payload), then fix the CRC."""
    rng = np.random.default_rng(99)
    base = encode_payload(_realistic_payload(300, seed=3))
    sizes = bitstream_breakdown(base)
    body = base[:-4]
    arrays_start = sizes["framing"] - 4 + sizes["header"]
    table_start = len(body) - sizes["code_table"] - sizes["payload"]
    positions = np.r_[4:arrays_start, table_start : len(body)]
    failures = 0
    for trial in range(300):
        mutated = bytearray(body)
        for _ in range(int(rng.integers(1, 4))):
            pos = int(rng.choice(positions))
            if trial % 3 == 0:
                mutated[pos] ^= 1 << int(rng.integers(0, 8))
            elif trial % 3 == 1:
                mutated[pos] = int(rng.integers(0, 256))
            else:
                mutated.insert(pos, int(rng.integers(0, 256)))
        data = bytes(mutated) + zlib.crc32(mutated).to_bytes(4, "little")
        try:
            decode_payload(data)
        except LfcompError:
            failures += 1
    assert failures > 200
