"""The networks (PyTorch) that ship as ONNX models."""
