"""Live GPR input: trace-stream sources, framing, GNSS, replay."""
