"""Repository conftest: intentionally empty.

The pytest plugin `pcr_conformance.plugin` (entry point `pytest11`, active in every pytest run once the
package is installed) owns the options, markers, fixtures, kit selection and reports; see
docs/interfaces.md §10. Keep it that way so the suites run the same from any directory.
"""
