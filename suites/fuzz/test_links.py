"""The specs' OpenAPI links, walked as a client would: AddLoans -> GetBatchStatus -> GetLoan, OrderData ->
GetOrderStatus / GetDistribution, GetCreditRegisterExtract -> GetExtractLog.

A link's request body is built from its runtime expressions over the first call; the answer must be a
documented one that conforms to its schema (ENV-014), and the flows' own targets answer 200.
"""

from __future__ import annotations

from typing import Any

import pytest

from pcr_conformance import catalogue, contract, expect, specs
from pcr_conformance import suite as s

_UNRESOLVED = object()


def _links() -> list[Any]:
    params = []
    for family in catalogue.families():
        try:
            doc = specs.load_spec(family)
        except (OSError, KeyError):
            continue
        for item in doc.get("paths", {}).values():
            op = item.get("post") or {}
            for code, resp in sorted(op.get("responses", {}).items()):
                resp = specs.resolve(doc, resp) if "$ref" in resp else resp
                for name, link in sorted((resp.get("links") or {}).items()):
                    link = specs.resolve(doc, link) if "$ref" in link else link
                    source, target = op["operationId"], link.get("operationId")
                    # contract.conforms judges the linked answer's modelled parts too (ENV-023)
                    marks = [pytest.mark.verifies("ENV-014", "ENV-023"),
                             pytest.mark.capability(catalogue.get(source).capability)]
                    params.append(pytest.param(source, int(code), target, link.get("requestBody") or {},
                                               id=f"{source}-{code}-{name}", marks=marks))
    return params


def _pointer(document: Any, pointer: str) -> Any:
    node = document
    for part in [p.replace("~1", "/").replace("~0", "~") for p in pointer.lstrip("/").split("/") if p]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return _UNRESOLVED
    return node


def _evaluate(template: Any, request_body: Any, request_headers: dict[str, str], response_body: Any) -> Any:
    if isinstance(template, dict):
        return {k: _evaluate(v, request_body, request_headers, response_body) for k, v in template.items()}
    if not isinstance(template, str) or not template.startswith("$"):
        return template
    if template.startswith("$request.body#"):
        return _pointer(request_body, template.split("#", 1)[1])
    if template.startswith("$response.body#"):
        return _pointer(response_body, template.split("#", 1)[1])
    if template.startswith("$request.header."):
        name = template.split(".", 2)[2].lower()
        return next((v for k, v in request_headers.items() if k.lower() == name), _UNRESOLVED)
    return _UNRESOLVED


def _unresolved(value: Any) -> list[str]:
    if value is _UNRESOLVED:
        return [""]
    if isinstance(value, dict):
        return [f"/{k}{sub}" for k, v in value.items() for sub in _unresolved(v)]
    return []


@pytest.mark.parametrize(("source", "code", "target", "template"), _links())
def test_link(source, code, target, template, pcr_clients, pcr_data):
    """Following a documented link from a successful answer gives a documented, conforming answer."""
    client = pcr_clients.get(s.slot_for(catalogue.get(source).family))
    body, headers = s.valid_request(source, client, pcr_data)
    if source == "GetBatchStatus":  # start from a batch that exists
        added, add_headers = s.valid_request("AddLoans", client, pcr_data)
        s.report_all_accepted(client, "AddLoans", added["loans"], "BAT-002",
                              batch_reference=add_headers["BatchReference"])
        body["batchReference"] = add_headers["BatchReference"]
    first = client.call(source, body, headers=headers)
    expect.status(first, code, "ENV-014", f"{source} (start of the link to {target})")
    if source in catalogue.submit_operations():
        client.wait_batch(headers["BatchReference"])
    link_body = _evaluate(template, body, headers, expect.body_of(first))
    missing = _unresolved(link_body)
    if missing:
        pytest.skip(f"spec defect: link {source} -> {target} has expressions that do not resolve on a valid "
                    f"{source} request: {', '.join(missing)} ({template})")
    # A link targets an operation of the same API family, called with the same identity.
    second = client.call(target, link_body)
    contract.conforms(second, target)
    flows = {("AddLoans", "GetBatchStatus"): 200, ("AddLoans", "GetLoan"): 200, ("OrderData", "GetOrderStatus"): 200,
             ("GetCreditRegisterExtract", "GetExtractLog"): 200}
    if (source, target) in flows:
        expect.status(second, flows[(source, target)], "ENV-014", f"{target} by the link from {source}")
