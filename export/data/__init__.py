"""Training data: synthetic generators, rendered scenes, bundled samples, dataset builders."""
