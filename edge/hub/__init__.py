"""The control room's hub: subscriber (ingest), store, registry, HTTP API, exports.

Data flows one way: ``messages`` (decode) -> ``ingest`` (MQTT) -> ``store`` (+ ``registry``)
-> ``api`` / ``export``; ``service`` wires them (the daemon), ``config`` is its TOML.
"""
