"""Personal data over time: token expiry, card numbers masked at rest, retention,
and per-visitor export and erasure (docs/privacy.md)."""
