"""Conversion: ONNX export, quantisation, FP16, TensorRT, verification (the accuracy gate)."""
