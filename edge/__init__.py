"""GeoEdge on-device package: beach camera stations and vehicle-mounted GPR units."""

__version__ = "0.1.0"
