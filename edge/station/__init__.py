"""The platform both sites run on.

The daemon (composition root only), the :class:`~edge.station.site.Site` seam, the durable
outbox and its MQTT publisher, inbound inputs, health, systemd notification, retention, disk
space and the shared reconnect back-off.
"""
