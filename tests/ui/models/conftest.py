"""The model manager's fixtures (loopback Hub, in-memory keyring): see tests/hub_fixtures.py."""

from hub_fixtures import gated_catalog, hub_server, memory_keyring, paths  # noqa: F401
