"""Sea/land segmentation, waterline extraction in world coordinates, transects, overlays."""
