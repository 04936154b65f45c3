"""Canonical Huffman coding: exact round trips, optimality, canonical prefix codes, robust decoding."""

from __future__ import annotations

import functools
import heapq

import numpy as np
import pytest

from lfcomp.entropy.huffman import (
    MAX_CODE_LENGTH,
    HuffmanCoded,
    canonical_codes,
    code_lengths_from_counts,
    entropy_bits,
    huffman_code_lengths,
    huffman_decode,
    huffman_encode,
)

RNG = np.random.default_rng(1234)


def _kmeans_like(n: int, codebook: int = 256, outlier_rate: float = 0.005) -> np.ndarray:
    """Laplacian-like codebook labels with a few N+q outlier codes, as the quantizer emits."""
    x = RNG.laplace(0.0, 0.15, n)
    labels = np.clip(np.round((x + 1) / 2 * (codebook - 1)), 0, codebook - 1).astype(np.int64)
    outliers = RNG.random(n) < outlier_rate
    labels[outliers] = codebook + RNG.integers(0, 65536, int(outliers.sum()))
    return labels


STREAMS = {
    "empty": np.zeros(0, dtype=np.int64),
    "single_symbol": np.full(1000, 7),
    "one_element": np.array([123456]),
    "two_symbols": RNG.choice([3, 90000], size=500, p=[0.9, 0.1]),
    "uniform": RNG.integers(0, 256, 20_000),
    "geometric": RNG.geometric(0.2, 20_000),
    "kmeans_labels": _kmeans_like(20_000),
    "large_alphabet": RNG.permutation(np.arange(65536 + 256)),  # every codebook and outlier code
    "max_symbol": np.array([0, 2**32 - 1, 2**32 - 1, 5], dtype=np.uint64),
}


@functools.cache
def _coded(name: str) -> HuffmanCoded:
    """Each test stream is encoded once (the 65 792-symbol alphabet takes a fraction of a second)."""
    return huffman_encode(STREAMS[name])


def _reference_total_bits(counts: np.ndarray) -> int:
    """Optimal Huffman cost, computed independently as the sum of all merged weights."""
    heap = [int(c) for c in counts]
    if len(heap) == 1:
        return heap[0]
    heapq.heapify(heap)
    total = 0
    while len(heap) > 1:
        merged = heapq.heappop(heap) + heapq.heappop(heap)
        total += merged
        heapq.heappush(heap, merged)
    return total


@pytest.mark.parametrize("name", STREAMS)
def test_round_trip_is_exact(name: str) -> None:
    symbols = STREAMS[name]
    coded = _coded(name)
    decoded = huffman_decode(coded.lengths, coded.payload, coded.num_bits, coded.count)
    assert decoded.dtype == np.int64
    assert np.array_equal(decoded, symbols.astype(np.int64))
    assert coded.count == symbols.size
    assert len(coded.payload) == (coded.num_bits + 7) // 8


@pytest.mark.parametrize("name", [n for n in STREAMS if n != "empty"])
def test_lengths_are_optimal_and_within_entropy_bounds(name: str) -> None:
    symbols = STREAMS[name]
    alphabet, counts = np.unique(symbols, return_counts=True)
    table_alphabet, lengths = _coded(name).lengths
    assert np.array_equal(table_alphabet, alphabet) and table_alphabet.dtype == np.uint32
    total = int(np.sum(counts * lengths.astype(np.int64)))
    assert total == _reference_total_bits(counts)
    assert total == _coded(name).num_bits
    entropy = entropy_bits(symbols)
    assert entropy - 1e-6 <= total
    if len(alphabet) > 1:
        assert total < entropy + symbols.size
    else:
        assert total == symbols.size  # a lone symbol still costs one bit


@pytest.mark.parametrize("name", [n for n in STREAMS if n not in ("empty", "single_symbol", "one_element")])
def test_canonical_codes_are_complete_and_prefix_free(name: str) -> None:
    alphabet, lengths = _coded(name).lengths
    assert sum(2.0 ** -int(length) for length in lengths) == 1.0  # Kraft equality
    codes = canonical_codes(alphabet, lengths)
    words = sorted(format(int(c), f"0{int(n)}b") for c, n in zip(codes, lengths))
    assert all(not b.startswith(a) for a, b in zip(words, words[1:]))
    # Canonical: ordered by (length, symbol), consecutive within a length.
    order = np.lexsort((alphabet, lengths))
    left_aligned = [int(codes[i]) << (MAX_CODE_LENGTH - int(lengths[i])) for i in order]
    assert left_aligned == sorted(left_aligned) and len(set(left_aligned)) == len(left_aligned)


def test_code_length_table_matches_encoder() -> None:
    alphabet, lengths = huffman_code_lengths(STREAMS["kmeans_labels"])
    coded = _coded("kmeans_labels")
    assert np.array_equal(alphabet, coded.lengths[0]) and np.array_equal(lengths, coded.lengths[1])
    assert alphabet.dtype == np.uint32 and lengths.dtype == np.uint8


def test_single_symbol_gets_one_bit() -> None:
    coded = huffman_encode(np.full(10, 42))
    assert coded.lengths[1].tolist() == [1] and coded.num_bits == 10 and coded.payload == bytes(2)


def test_length_limit_flattens_fibonacci_counts() -> None:
    fib = [1, 1]
    while len(fib) < 20:
        fib.append(fib[-1] + fib[-2])
    assert code_lengths_from_counts(fib).max() == 19  # unconstrained: a maximally deep tree
    limited = code_lengths_from_counts(fib, max_length=8)
    assert limited.max() <= 8
    assert sum(2.0 ** -int(n) for n in limited) == 1.0


def test_entropy_bits() -> None:
    assert entropy_bits(np.array([1, 2, 3, 4])) == pytest.approx(8.0)
    assert entropy_bits(np.full(5, 3)) == 0.0
    assert entropy_bits(np.zeros(0, dtype=np.int64)) == 0.0


@pytest.mark.parametrize(
    "bad", [np.array([[1, 2]]), np.array([1.0, 2.0]), np.array([-1, 2]), np.array([2**32], dtype=np.int64)]
)
def test_encode_rejects_invalid_symbols(bad: np.ndarray) -> None:
    with pytest.raises(ValueError):
        huffman_encode(bad)


def _small_stream() -> tuple:
    coded = huffman_encode(np.array([0, 1, 0, 0, 2]))  # codes 0, 10, 11: 0100011 + 1 pad bit
    assert coded.payload == bytes([0b01000110]) and coded.num_bits == 7
    return coded.lengths, coded.payload, coded.num_bits, coded.count


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda t, p, b, c: (t, p, b, c), None),
        (lambda t, p, b, c: ((np.array([0, 1, 2]), np.array([1, 1, 1])), p, b, c), "Kraft"),
        (lambda t, p, b, c: ((np.array([0, 1, 2]), np.array([1, 2, 3])), p, b, c), "complete"),
        (lambda t, p, b, c: ((np.array([0]), np.array([2])), p, b, c), "single symbol"),
        (lambda t, p, b, c: ((np.array([1, 0]), np.array([1, 1])), p, b, c), "increasing"),
        (lambda t, p, b, c: ((np.array([0, 1]), np.array([1, 40])), p, b, c), "lengths"),
        (lambda t, p, b, c: ((np.array([0, 1]), np.array([1])), p, b, c), "equal size"),
        (lambda t, p, b, c: (t, p, b + 8, c), "too short"),
        (lambda t, p, b, c: (t, p + b"\0", b, c), "trailing garbage"),
        (lambda t, p, b, c: (t, p, b - 1, c), "padding"),
        (lambda t, p, b, c: (t, p, b, c + 1), "fewer"),
        (lambda t, p, b, c: (t, p, b, c - 1), "more"),
        (lambda t, p, b, c: (t, p, b, 10**12), "cannot fit"),
        (lambda t, p, b, c: (t, p, b, -1), "non-negative"),
        (lambda t, p, b, c: ((np.zeros(0), np.zeros(0)), p, b, c), "empty"),
        (lambda t, p, b, c: (t, b"", 0, c), "cannot fit"),
        (lambda t, p, b, c: (t, p, b, 0), "no symbols"),
    ],
)
def test_decode_rejects_malformed_input(mutate, message) -> None:
    args = mutate(*_small_stream())
    if message is None:
        huffman_decode(*args)
        return
    with pytest.raises(ValueError, match=message):
        huffman_decode(*args)


def test_decode_rejects_invalid_codeword_and_cut_codeword() -> None:
    single = (np.array([5]), np.array([1]))
    with pytest.raises(ValueError, match="invalid codeword at bit 2"):
        huffman_decode(single, bytes([0b00100000]), 3, 3)
    table = (np.array([0, 1, 2]), np.array([1, 2, 2]))  # codes 0, 10, 11
    with pytest.raises(ValueError, match="inside a codeword"):
        huffman_decode(table, bytes([0b01000000]), 2, 2)


def test_decode_random_garbage_fails_cleanly() -> None:
    rng = np.random.default_rng(7)
    alphabet, lengths = huffman_code_lengths(_kmeans_like(3000))
    for _ in range(100):
        payload = rng.integers(0, 256, int(rng.integers(0, 40)), dtype=np.uint8).tobytes()
        num_bits = max(0, 8 * len(payload) - int(rng.integers(0, 8)))
        try:
            out = huffman_decode((alphabet, lengths), payload, num_bits, int(rng.integers(0, 60)))
        except ValueError:
            continue
        assert np.isin(out, alphabet).all()
