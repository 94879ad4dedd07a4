"""Sub-commands of the ``geoedge`` command line, one module each."""
