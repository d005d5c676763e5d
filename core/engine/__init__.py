"""The engine: one run (``run.py``), training, evaluation, checkpoints, logging and preview pictures."""
