"""Lints of the data-driven corpus (issue 6): every corpus file is valid against the corpus format, case
ids are unique, every `verifies` ID exists in the requirement register, and each file sits where its
operation belongs."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from pcr_conformance.specs import load_requirements, operation_index

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "suites" / "corpus"
CORPUS_FILES = sorted(CORPUS.glob("*/*.yaml"))


def corpus_schema() -> dict:
    return json.loads((CORPUS / "corpus.schema.json").read_text(encoding="utf-8"))


def lint_corpus_file(path: Path, known_ids: set[str], operations: dict) -> list[str]:
    """Problems of one corpus file, as sentences naming the case and the rule."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(corpus_schema())
    problems = [f"{path.name}: {'/'.join(map(str, e.absolute_path))}: {e.message}"
                for e in validator.iter_errors(data)]
    if problems:
        return problems
    if data["operation"] != path.stem:
        problems.append(f"{path.name}: operation {data['operation']} differs from the file name")
    family = operations.get(data["operation"], (None,))[0]
    if family is None:
        problems.append(f"{path.name}: operation {data['operation']} is not defined in specs/")
    elif data["api"] != family:
        problems.append(f"{path.name}: api {data['api']} is not the operation's family {family}")
    if family is not None and path.parent.name != family:
        problems.append(f"{path.name}: belongs under suites/corpus/{family}/, not {path.parent.name}/")
    seen: set[str] = set()
    for case in data["cases"]:
        if case["id"] in seen:
            problems.append(f"{path.name}: case id {case['id']} is not unique")
        seen.add(case["id"])
        unknown = [i for i in case["verifies"] if i not in known_ids]
        if unknown:
            problems.append(f"{path.name}::{case['id']}: unknown requirement ID(s) {', '.join(unknown)}")
    return problems


def test_corpus_has_a_file_per_operation() -> None:
    """Every operation of the specs has a corpus file."""
    missing = sorted(set(operation_index()) - {p.stem for p in CORPUS_FILES})
    assert not missing, f"operations without a corpus file: {missing}"


@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_corpus_file_is_valid(path: Path) -> None:
    """The corpus file follows the corpus format, has unique case ids and names only known requirements."""
    known = {r["id"] for r in load_requirements()}
    problems = lint_corpus_file(path, known, operation_index())
    assert not problems, "\n".join(problems)


def test_corpus_lint_finds_broken_files(tmp_path: Path) -> None:
    """A duplicate case id, an unknown requirement and an unknown member are each reported."""
    good = yaml.safe_load(CORPUS_FILES[0].read_text(encoding="utf-8"))
    case = dict(good["cases"][0])
    broken = dict(good, cases=[case, dict(case, verifies=["ZZZ-999"])])
    folder = tmp_path / CORPUS_FILES[0].parent.name
    folder.mkdir()
    path = folder / CORPUS_FILES[0].name
    path.write_text(yaml.safe_dump(broken), encoding="utf-8")
    problems = lint_corpus_file(path, {r["id"] for r in load_requirements()}, operation_index())
    assert any("not unique" in p for p in problems)
    assert any("ZZZ-999" in p for p in problems)
    path.write_text(yaml.safe_dump(dict(good, extra=1)), encoding="utf-8")
    assert lint_corpus_file(path, set(), operation_index())
