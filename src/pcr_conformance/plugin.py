"""pytest plugin of pcr-conformance (being built)."""
