"""Model runtime (ONNX Runtime / TensorRT) and model manifests; the shipped models live beside
this file."""
