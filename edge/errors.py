"""User-facing errors.

Every command exits non-zero with one line that names the bad input (file, key,
value, expected) and never a traceback for user error. Stages raise
:class:`GeoEdgeError` (or a subclass) with that one line as its message; the
command line prints it and exits with status 2.
"""


class GeoEdgeError(Exception):
    """An error caused by the user's input or environment, reported as one line."""


class ConfigError(GeoEdgeError):
    """The station configuration is invalid (unknown key, wrong type, missing file, ...)."""


class InputError(GeoEdgeError):
    """An input file or stream is unreadable, truncated or of the wrong kind."""


class TooLargeError(GeoEdgeError):
    """A message larger than the outbox can ever hold (``outbox.max_bytes``): storing it
    again later cannot succeed."""


class ModelError(GeoEdgeError):
    """A model file is missing, does not match its manifest, or cannot run here."""
