"""The pcr-conformance reference register."""
