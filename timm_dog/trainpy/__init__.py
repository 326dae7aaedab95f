"""Everything timm's train.py reads and writes: its arguments, data, runs and checkpoints."""
