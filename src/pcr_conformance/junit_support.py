"""JUnit XML as the outcomes mean it (docs/concepts.md#outcomes): a broken test is an `<error>`, never a
`<failure>`, and every test case carries its requirement IDs as `<property name="requirement">`.

pytest's junitxml writes a `<failure>` for any exception in the call phase, a TargetUnreachable included, and
an `<error>` only for setup and teardown. The plugin rewrites the file once pytest has written it (at session
end, on the process that writes it), so CI systems count broken tests as errors. pytest's own exit code is
left as it is (1 when a test failed or broke); `pcr-conformance run` decides its exit code from summary.json.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from pathlib import Path

REQUIREMENT_PROPERTY = "requirement"


def testcase_key(nodeid: str, prefix: str | None = None) -> tuple[str, str]:
    """(classname, name) junitxml gives the test case of a node id."""
    from _pytest.junitxml import mangle_test_address

    names = mangle_test_address(nodeid)
    if prefix:
        names[0] = f"{prefix}.{names[0]}"
    return ".".join(names[:-1]), names[-1]


def broken_as_errors(path: Path, broken: Iterable[str], prefix: str | None = None) -> int:
    """Turn the `<failure>` of each broken test (node ids) into an `<error>` and fix the suite's counts.
    Returns how many test cases changed; a missing or unreadable file is left alone."""
    keys = {testcase_key(n, prefix) for n in broken}
    if not keys or not path.is_file():
        return 0
    try:
        tree = ET.parse(path)
    except ET.ParseError:
        return 0
    changed = 0
    for suite in tree.getroot().iter("testsuite"):
        moved = 0
        for case in suite.iter("testcase"):
            if (case.get("classname", ""), case.get("name", "")) not in keys:
                continue
            for failure in case.findall("failure"):
                failure.tag = "error"
                moved += 1
        if moved:
            suite.set("failures", str(max(0, int(suite.get("failures", "0")) - moved)))
            suite.set("errors", str(int(suite.get("errors", "0")) + moved))
            changed += moved
    if changed:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    return changed
