"""The `pcr-conformance` commands, one module each; `pcr_conformance.cli` parses the arguments and calls
`<module>.main(args)`."""
