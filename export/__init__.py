"""Export trained checkpoints to ONNX files that honour the gimp-colorize model contract."""
