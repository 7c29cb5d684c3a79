"""pcr-conformance harness."""
