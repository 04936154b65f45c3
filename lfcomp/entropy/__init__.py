"""Entropy coding of symbol streams: canonical Huffman (QDLR's weights, §2.5)."""

from lfcomp.entropy.huffman import HuffmanCoded, entropy_bits, huffman_decode, huffman_encode

__all__ = ["HuffmanCoded", "entropy_bits", "huffman_decode", "huffman_encode"]
