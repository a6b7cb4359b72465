"""The WPC registry, seen from a fetcher: re-hash, verify against an allowlist, cache."""

from adapters.registry.client import RegistryClient

__all__ = ["RegistryClient"]
