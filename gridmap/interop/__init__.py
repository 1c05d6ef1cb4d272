"""Interoperability: Open311 GeoReport v2, OGC API – Features, the ledger export and import."""
