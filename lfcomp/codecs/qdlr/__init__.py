"""QDLR (Shi & Guillemot, ICASSP 2023), one module per stage of the paper: ``train`` (NeRF-org,
§2.2), ``lowrank`` (ADMM, §2.3), ``decompose`` and ``distill`` (TT cores and DLR, §2.4),
``quantize`` (shared codebook QAT, §2.5), ``payload`` (what the bitstream carries and the decoder
rebuilds) and ``commands`` (the stages as ``lfcomp`` subcommands)."""
