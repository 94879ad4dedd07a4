"""The beach camera station.

The site and its collections (capture, sampler, products, quality gates), then
``geometry/`` (camera model, calibration, grid, rectification), ``waterline/``
(segmentation, extraction, transects, overlays) and ``shoreline/`` (tide, waves, runup,
slope, the tide-datum shoreline).
"""
