"""Training loops for the shipped networks."""
