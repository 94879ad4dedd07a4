"""Camera geometry: the CIRN camera model, calibration (incl. a GCP solve), the local grid and
rectification to a plan view."""
