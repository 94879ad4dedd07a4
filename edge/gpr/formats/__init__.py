"""GPR file readers, one module per format, and the reader table
(:mod:`edge.gpr.formats.readers`)."""
