"""The fuzzing engine shared by test_<api>.py: schemathesis cases from the spec, sent with the identity
allowed on the API, every answer judged by suites/fuzz/checks.py.

Why not `schemathesis.pytest.from_fixture`: with pytest 9.2 it fails (`Function` has no `_nodeid`) and runs
each operation as a subtest whose failure message is "contains N failed subtests", which names no requirement.
So each operation is its own pytest item (stable id `test_fuzz[<operationId>]`) that builds a Hypothesis test
from the lazily loaded schema of the session's target.

Profiles: the plugin loads the Hypothesis profile named by --profile (`certification`: derandomized, fixed
budget; `regression`: random, longer). The schema's generation settings are derived from that profile, so a
certification run sends the same inputs every time.
"""

from __future__ import annotations

import copy
import functools
from typing import Any

import hypothesis
from hypothesis import strategies as st

from pcr_conformance import catalogue, specs

from . import checks

# Upper bound of generated cases per operation in a derandomized (certification) run: keeps the fuzz kit short.
CERTIFICATION_MAX_EXAMPLES = 20
CERTIFICATION_SEED = 20261121


def operation_ids(family: str) -> list[str]:
    return list(catalogue.operation_ids(family))


@functools.lru_cache(maxsize=8)
def _bundled(family: str) -> dict[str, Any]:
    return specs.load_spec(family)


def schema_for(target: Any, family: str, client: Any) -> Any:
    """A schemathesis schema of the family's spec, aimed at the target with the client's certificate."""
    import schemathesis

    schema = schemathesis.openapi.from_dict(copy.deepcopy(_bundled(family)))
    schema.config.update(base_url=target.base_url(family), tls_verify=target.tls.ca_bundle or True,
                         request_cert=client.cert, request_cert_key=client.key, request_timeout=target.timeout_s)
    profile = hypothesis.settings.default
    if profile.derandomize:
        schema.config.generation.update(deterministic=True,
                                        max_examples=min(profile.max_examples, CERTIFICATION_MAX_EXAMPLES))
        schema.config.seed = CERTIFICATION_SEED
    else:
        schema.config.generation.update(deterministic=False, max_examples=profile.max_examples)
    return schema


def _own_envelope(case: Any, client: Any) -> None:
    """Positive cases are sent as the caller's own organisation, so they reach the business logic instead of
    stopping at the owner check (which the security suite covers)."""
    if isinstance(case.body, dict):
        case.body["targetEnvironment"] = client.target.environment
        case.body["owner"] = client.owner


def fuzz_operation(target: Any, family: str, operation_id: str, client: Any, data: Any) -> None:
    """Send the spec's request examples and then generated cases; every answer must pass every check."""
    from schemathesis import GenerationMode

    schema = schema_for(target, family, client)
    operation = schema.find_operation_by_id(operation_id)
    timeout = target.timeout_s

    # 1. The documented examples, as the caller (deterministic: the same bodies on every run).
    for _name, body in sorted(specs.request_examples(operation_id).items()):
        headers = ({"BatchReference": data.batch_reference(f"fuzz_{operation_id}")}
                   if operation_id in catalogue.submit_operations() else None)
        case = operation.Case(body=copy.deepcopy(body), headers=headers)
        _own_envelope(case, client)
        checks.run_all(_call(case, timeout), case)

    # 2. Generated cases: schema-valid ones sent as the caller, schema-invalid ones as generated.
    positive = operation.as_strategy(generation_mode=GenerationMode.POSITIVE)
    negative = operation.as_strategy(generation_mode=GenerationMode.NEGATIVE)
    settings = schema.config.get_hypothesis_settings(operation=operation, phase="fuzzing")

    @hypothesis.settings(settings, report_multiple_bugs=False, database=None)
    @hypothesis.given(case=st.one_of(positive, negative), own=st.booleans())
    def run(case: Any, own: bool) -> None:
        mode = getattr(getattr(case.meta, "generation", None), "mode", None)
        if own and mode == GenerationMode.POSITIVE:
            _own_envelope(case, client)
        checks.run_all(_call(case, timeout), case)

    if settings.derandomize:
        run = hypothesis.seed(CERTIFICATION_SEED)(run)
    run()


def _call(case: Any, timeout: float) -> Any:
    """One request; a network failure is the harness's problem (broken), never a check failure."""
    import requests

    from pcr_conformance.errors import TargetUnreachable

    try:
        return case.call(timeout=timeout)
    except requests.exceptions.RequestException as exc:
        raise TargetUnreachable(f"{case.operation.label}: no answer: {type(exc).__name__}: {exc}",
                                kind="tls" if "SSL" in str(exc) else "network") from exc
