"""`geoedge export train-unet`: placeholder until the U-Net training lands."""
