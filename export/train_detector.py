"""`geoedge export train-detector`: placeholder until the detector training lands."""
