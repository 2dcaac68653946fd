"""gimp-colorize backend: ONNX colorization models behind a local daemon."""

__version__ = "0.1.0"
