"""Canonical Huffman coding of the quantized weights' symbol stream.

QDLR-NeRF (§2.5) Huffman-codes the union of two symbol sets without a flag bit: a k-means
codebook index ``0..N-1`` or ``N + q`` for a 16-bit outlier code ``q``. The symbols here are
any non-negative integers below 2**32.

* Code lengths: textbook Huffman merging (``heapq``) of the symbol counts, so the total length
  is optimal. Lengths are capped at ``MAX_CODE_LENGTH`` = 32 bits with the count-halving
  heuristic: while the deepest code is too long, halve every count (keeping it >= 1) and rebuild.
  It only triggers for Fibonacci-like skew needing more than ~9e6 symbols, and it always
  terminates (all counts 1 gives a balanced tree of depth <= 32).
* Codes: canonical, as in DEFLATE (RFC 1951 §3.2.2): sorted by (length, symbol), consecutive
  integers, so the decoder needs only the (symbol, length) table.
* Bits are packed MSB first; the last byte is padded with zero bits.
* Decoding is table-free and vectorised: the code length that would start at *every* bit position
  is found with numpy (a canonical code is decided by comparing the next 32 bits against one
  limit per length), a short Python loop then follows the chain of codeword starts, and the
  symbols at those starts are looked up with numpy again.
"""

from __future__ import annotations

import heapq
from array import array
from dataclasses import dataclass

import numpy as np

MAX_CODE_LENGTH = 32
_MAX_SYMBOL = 2**32 - 1
_CHUNK_BITS = 1 << 20  # bit positions examined per numpy pass while decoding (bounds memory)


@dataclass(eq=False)
class HuffmanCoded:
    """A Huffman-coded symbol stream: the code table plus the packed bits."""

    lengths: tuple[np.ndarray, np.ndarray]  # (alphabet: uint32 strictly increasing, code lengths: uint8)
    payload: bytes  # codewords, MSB first, zero-padded to whole bytes
    num_bits: int  # bits of payload actually used
    count: int  # number of symbols


def _as_symbols(symbols: np.ndarray) -> np.ndarray:
    """Validate a symbol array (1-D, integers in 0..2**32-1) and return it as int64."""
    array = np.asarray(symbols)
    if array.ndim != 1:
        raise ValueError(f"symbols must be a 1-D array, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int64)
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"symbols must be integers, got dtype {array.dtype}")
    if array.min() < 0 or array.max() > _MAX_SYMBOL:
        raise ValueError("symbols must lie in 0..2**32-1")
    return array.astype(np.int64)


def _huffman_depths(weights: list[int]) -> list[int]:
    """Leaf depths of a Huffman tree over ``weights`` (at least two), ties broken by node id."""
    n = len(weights)
    heap = [(w, i) for i, w in enumerate(weights)]
    heapq.heapify(heap)
    parent = [0] * (2 * n - 1)
    for node in range(n, 2 * n - 1):
        w1, a = heapq.heappop(heap)
        w2, b = heap[0]
        heapq.heapreplace(heap, (w1 + w2, node))
        parent[a] = parent[b] = node
    depth = [0] * (2 * n - 1)  # the root (last node) has depth 0; parents are created after children
    for node in range(2 * n - 3, -1, -1):
        depth[node] = depth[parent[node]] + 1
    return depth[:n]


def code_lengths_from_counts(counts: np.ndarray, max_length: int = MAX_CODE_LENGTH) -> np.ndarray:
    """Optimal Huffman code lengths (uint8) for positive ``counts``, capped at ``max_length``.

    A single symbol gets length 1. See the module docstring for the length-limiting heuristic.
    """
    weights = [int(c) for c in np.asarray(counts).ravel()]
    if any(w <= 0 for w in weights):
        raise ValueError("symbol counts must be positive")
    if len(weights) > 2**max_length:
        raise ValueError(f"{len(weights)} symbols cannot be coded with at most {max_length} bits")
    if len(weights) <= 1:
        return np.ones(len(weights), dtype=np.uint8)
    while True:
        depths = _huffman_depths(weights)
        if max(depths) <= max_length:
            return np.array(depths, dtype=np.uint8)
        weights = [max(1, w >> 1) for w in weights]


def huffman_code_lengths(symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Code-length table ``(alphabet uint32 increasing, lengths uint8)`` for a symbol stream."""
    alphabet, counts = np.unique(_as_symbols(symbols), return_counts=True)
    return alphabet.astype(np.uint32), code_lengths_from_counts(counts)


def _check_table(alphabet: np.ndarray, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate a code-length table (it may come from a corrupted file); raise ValueError."""
    alphabet = np.asarray(alphabet)
    lengths = np.asarray(lengths)
    if alphabet.ndim != 1 or lengths.shape != alphabet.shape:
        raise ValueError("code table: alphabet and lengths must be 1-D arrays of equal size")
    if alphabet.size == 0:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    if not (np.issubdtype(alphabet.dtype, np.integer) and np.issubdtype(lengths.dtype, np.integer)):
        raise ValueError("code table: alphabet and lengths must be integers")
    if alphabet.min() < 0 or alphabet.max() > _MAX_SYMBOL:
        raise ValueError("code table: symbols must lie in 0..2**32-1")
    if lengths.min() < 1 or lengths.max() > MAX_CODE_LENGTH:
        raise ValueError(f"code table: code lengths must lie in 1..{MAX_CODE_LENGTH}")
    alphabet = alphabet.astype(np.int64)
    lengths = lengths.astype(np.int64)
    if np.any(np.diff(alphabet) <= 0):
        raise ValueError("code table: symbols must be strictly increasing")
    if alphabet.size == 1:
        if lengths[0] != 1:
            raise ValueError("code table: a single symbol must have code length 1")
        return alphabet, lengths
    kraft = int(np.sum(np.left_shift(np.uint64(1), (MAX_CODE_LENGTH - lengths).astype(np.uint64))))
    if kraft > 2**MAX_CODE_LENGTH:
        raise ValueError("code table: code lengths violate the Kraft inequality")
    if kraft < 2**MAX_CODE_LENGTH:
        raise ValueError("code table: code lengths do not form a complete prefix code")
    return alphabet, lengths


def _canonical_layout(lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Canonical order of the table entries, first code and first rank of each length."""
    order = np.lexsort((np.arange(lengths.size), lengths))  # by (length, symbol): alphabet is sorted
    per_length = np.bincount(lengths, minlength=MAX_CODE_LENGTH + 1)
    per_length[0] = 0
    first_code = np.zeros(MAX_CODE_LENGTH + 1, dtype=np.int64)
    code = 0
    for length in range(1, MAX_CODE_LENGTH + 1):
        code = (code + int(per_length[length - 1])) << 1
        first_code[length] = code
    first_rank = np.concatenate(([0], np.cumsum(per_length)[:-1]))
    return order, first_code, first_rank


def canonical_codes(alphabet: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Canonical codewords (uint64, aligned with ``alphabet``) for a valid code-length table."""
    _, lengths = _check_table(alphabet, lengths)
    order, first_code, first_rank = _canonical_layout(lengths)
    sorted_lengths = lengths[order]
    codes = np.empty(lengths.size, dtype=np.uint64)
    ranks = np.arange(lengths.size) - first_rank[sorted_lengths]
    codes[order] = (first_code[sorted_lengths] + ranks).astype(np.uint64)
    return codes


def huffman_encode(symbols: np.ndarray) -> HuffmanCoded:
    """Huffman-code a 1-D array of integers in 0..2**32-1 with its own optimal canonical code."""
    values = _as_symbols(symbols)
    if values.size == 0:
        return HuffmanCoded((np.zeros(0, np.uint32), np.zeros(0, np.uint8)), b"", 0, 0)
    alphabet, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    lengths = code_lengths_from_counts(counts)
    codes = canonical_codes(alphabet, lengths)
    symbol_lengths = lengths.astype(np.int64)[inverse]
    symbol_codes = codes[inverse]
    ends = np.cumsum(symbol_lengths)
    starts = ends - symbol_lengths
    num_bits = int(ends[-1])
    bits = np.zeros(num_bits, dtype=np.uint8)
    for length in np.unique(lengths).tolist():  # all codewords of one length at once
        chosen = symbol_lengths == length
        positions = starts[chosen][:, None] + np.arange(length)
        shifts = np.arange(length - 1, -1, -1, dtype=np.uint64)
        bits[positions] = (symbol_codes[chosen][:, None] >> shifts) & np.uint64(1)
    payload = np.packbits(bits).tobytes()
    table = (alphabet.astype(np.uint32), lengths)
    return HuffmanCoded(table, payload, num_bits, int(values.size))


def huffman_decode(
    lengths_table: tuple[np.ndarray, np.ndarray], payload: bytes, num_bits: int, count: int
) -> np.ndarray:
    """Decode ``count`` symbols (int64) from ``payload``; raise ValueError on any inconsistency."""
    alphabet, lengths = _check_table(*lengths_table)
    num_bits, count = int(num_bits), int(count)
    payload = bytes(payload)
    if num_bits < 0 or count < 0:
        raise ValueError("num_bits and count must be non-negative")
    expected_bytes = (num_bits + 7) // 8
    if len(payload) < expected_bytes:
        raise ValueError(f"payload too short ({len(payload)} bytes for {num_bits} bits)")
    if len(payload) > expected_bytes:
        raise ValueError(f"trailing garbage after the payload ({len(payload)} bytes for {num_bits} bits)")
    if num_bits % 8 and payload[-1] & (0xFF >> (num_bits % 8)):
        raise ValueError("non-zero padding bits after the last codeword")
    if count == 0:
        if num_bits:
            raise ValueError(f"{num_bits} payload bits but no symbols declared")
        return np.zeros(0, dtype=np.int64)
    if alphabet.size == 0:
        raise ValueError(f"{count} symbols declared but the code table is empty")
    if count > num_bits:
        raise ValueError(f"{count} symbols cannot fit in {num_bits} bits")

    longest = int(lengths.max())
    order, first_code, first_rank = _canonical_layout(lengths)
    # Codes of length <= l, left-aligned to `longest` bits, fill [0, limit[l-1]) exactly.
    per_length = np.bincount(lengths, minlength=longest + 1)
    limits = np.array(
        [(int(first_code[l]) + int(per_length[l])) << (longest - l) for l in range(1, longest + 1)],
        dtype=np.uint64,
    )
    # words[i] = payload bytes i..i+7 as a big-endian integer (zero past the end).
    raw = np.frombuffer(payload + bytes(8), dtype=np.uint8)
    words = np.zeros(len(payload), dtype=np.uint64)
    for k in range(8):
        words |= raw[k : k + len(payload)].astype(np.uint64) << np.uint64(56 - 8 * k)

    def window(positions: np.ndarray) -> np.ndarray:
        """The `longest` bits starting at each bit position, as integers."""
        shift = (positions & 7).astype(np.uint64)
        return (words[positions >> 3] << shift) >> np.uint64(64 - longest)

    # step[p] = length of the codeword starting at bit p; 0 marks an invalid codeword and every
    # position at or past the end, so the chain below stops there without leaving the array.
    step = np.zeros(num_bits + longest + 1, dtype=np.uint8)
    for begin in range(0, num_bits, _CHUNK_BITS):
        end = min(begin + _CHUNK_BITS, num_bits)
        index = np.searchsorted(limits, window(np.arange(begin, end, dtype=np.int64)), side="right")
        step[begin:end] = np.where(index < longest, index + 1, 0)
    steps = step.tobytes()
    starts = array("q", bytes(8 * count))
    position = 0
    for i in range(count):
        starts[i] = position
        position += steps[position]
    if position < num_bits:
        if steps[position] == 0:
            raise ValueError(f"invalid codeword at bit {position}")
        raise ValueError(f"payload holds more than the declared {count} symbols")
    if position > num_bits:
        raise ValueError("payload ends inside a codeword")
    if starts[-1] >= num_bits:
        raise ValueError(f"payload holds fewer than the declared {count} symbols")

    start_array = np.frombuffer(starts, dtype=np.int64)
    symbol_lengths = step[start_array].astype(np.int64)
    codes = (window(start_array) >> (longest - symbol_lengths).astype(np.uint64)).astype(np.int64)
    ranks = first_rank[symbol_lengths] + codes - first_code[symbol_lengths]
    return alphabet[order[ranks]]


def entropy_bits(symbols: np.ndarray) -> float:
    """Empirical (order-0) entropy of the stream times its length: the bound Huffman approaches."""
    _, counts = np.unique(_as_symbols(symbols), return_counts=True)
    total = int(counts.sum())
    if total == 0:
        return 0.0
    return float(np.sum(counts * np.log2(total / counts)))
