"""Training code for gimp-colorize models (needs the `train` extra: torch, onnx)."""
