"""GPR unit: readers, live input, processing, detection, localisation."""
