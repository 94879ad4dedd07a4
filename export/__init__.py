"""Training side: models, training, ONNX / INT8 / FP16 / TensorRT export, accuracy gate."""
