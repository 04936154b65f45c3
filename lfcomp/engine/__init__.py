"""The training engine: device and seeds, ray batches, the trainer with its resume state, the
stages' quality report and checkpoints. Import from the modules (``lfcomp.engine.trainer``, ...)."""
