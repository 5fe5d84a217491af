"""Checklists as .xlsx workbooks, without a server: export then import gives the same
checklist (any checklist the API accepts), and a broken workbook gets every problem by
sheet, row and column in words."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from openpyxl import Workbook, load_workbook

from inspections.checklists.questions import (
    Choice,
    Content,
    EvidenceRule,
    Number,
    Option,
    PassFail,
    Question,
    Rating,
    Section,
    Text,
    YesNo,
    content_problems,
    max_points,
)
from inspections.checklists.schemas import ChecklistCreate, Contributor
from inspections.checklists.spreadsheet import (
    BadSpreadsheet,
    read_checklist,
    write_checklist,
)
from inspections.checklists.starter import load_starters

# Text a spreadsheet cell holds as it is: no control characters but tab and line feed
# (the module's docstring says what happens to the others).
CHARS = st.characters(exclude_categories=("Cs", "Cc"), include_characters="\n\t")


def text(min_size: int = 0, max_size: int = 40) -> st.SearchStrategy[str]:
    return st.text(CHARS, min_size=min_size, max_size=max_size)


keys = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
domains = st.sampled_from(["dignity", "safety", "food", "environment", "staff_2"])
numbers = st.floats(allow_nan=False, allow_infinity=False, width=64)
optional_text = st.none() | text(1)


@st.composite
def question(draw: st.DrawFn, key: str) -> Question:
    kind = draw(st.sampled_from([Rating, PassFail, YesNo, Choice, Number, Text]))
    common: dict[str, Any] = {
        "key": key,
        "prompt": draw(text(1)),
        "help": draw(optional_text),
        "easy_read": draw(optional_text),
        "domain": draw(domains),
        "weight": draw(st.floats(min_value=0, max_value=100, exclude_min=True)),
        "required": draw(st.booleans()),
        "allow_na": draw(st.booleans()),
    }
    if kind is Rating:
        common["labels"] = draw(st.lists(text(1, 20), min_size=2, max_size=10, unique=True))
    elif kind is YesNo:
        common["good_answer"] = draw(st.booleans())
    elif kind is Choice:
        values = draw(st.lists(keys, min_size=1, max_size=6, unique=True))
        common["options"] = [Option(value=v, label=draw(text(1, 20))) for v in values]
        common["multiple"] = draw(st.booleans())
    elif kind is Number:
        lo, hi = draw(st.none() | numbers), draw(st.none() | numbers)
        if lo is not None and hi is not None and lo > hi:
            lo, hi = hi, lo
        common.update(min=lo, max=hi, unit=draw(st.none() | text(1, 20)))
    elif kind is Text:
        common["max_length"] = draw(st.integers(1, 10_000))
    q = kind(**common)
    if draw(st.booleans()):
        scored = max_points(q) is not None
        when = draw(st.sampled_from(["always", "points_at_or_below"] if scored else ["always"]))
        points = draw(numbers) if when == "points_at_or_below" else draw(st.none() | numbers)
        q = msgspec.structs.replace(q, evidence=EvidenceRule(when=when, points=points))
    return q


@st.composite
def checklists(draw: st.DrawFn) -> ChecklistCreate:
    all_keys = draw(st.lists(keys, max_size=12, unique=True))
    sizes = draw(st.lists(st.integers(1, 4), max_size=5))
    sections, at = [], 0
    for size in sizes:
        chunk = all_keys[at : at + size]
        at += size
        if chunk:
            sections.append(
                Section(title=draw(text(1)), questions=[draw(question(k)) for k in chunk])
            )
    checklist = ChecklistCreate(
        title=draw(text(1)),
        description=draw(text()),
        service_kinds=draw(
            st.lists(st.from_regex(r"[a-z][a-z0-9_]{1,10}", fullmatch=True), max_size=3)
        ),
        contributors=[
            Contributor(name=draw(text(1)), role=draw(text()))
            for _ in range(draw(st.integers(0, 3)))
        ],
        content=Content(sections=sections),
    )
    assume(not content_problems(checklist.content))
    return checklist


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(checklists())
def test_export_then_import_gives_the_same_checklist(checklist: ChecklistCreate) -> None:
    # Through JSON first: exactly what the API would have stored and sent back.
    checklist = msgspec.json.decode(msgspec.json.encode(checklist), type=ChecklistCreate)
    assert read_checklist(write_checklist(checklist)) == checklist


def test_the_starter_checklists_round_trip_and_the_export_explains_itself() -> None:
    for checklist in load_starters():
        data = write_checklist(checklist)
        assert read_checklist(data) == checklist
        wb = load_workbook(io.BytesIO(data))
        assert wb.sheetnames == [
            "read me",
            "checklist",
            "contributors",
            "sections",
            "questions",
            "options",
        ]
        readme = " ".join(str(r[0]) for r in wb["read me"].iter_rows(values_only=True))
        assert "rating's labels with value 1, 2, 3" in readme
        assert "Import it as a new draft" in readme


def test_text_that_looks_like_a_formula_stays_text() -> None:
    checklist = ChecklistCreate(
        title='=HYPERLINK("http://evil.example")',
        content=Content(
            sections=[
                Section(
                    title="+1",
                    questions=[Text(key="q", prompt="=1+1", domain="dignity", help="-2")],
                )
            ]
        ),
    )
    data = write_checklist(checklist)
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        assert not any(b"<f>" in z.read(n) for n in z.namelist() if n.endswith(".xml"))
    assert read_checklist(data) == checklist


def workbook(**sheets: list[list[Any]]) -> bytes:
    wb = Workbook()
    first = wb.active
    assert first is not None
    wb.remove(first)
    for name, rows in sheets.items():
        ws = wb.create_sheet(name)
        for row in rows:
            ws.append(row)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def ward_walk(questions: list[list[Any]], **sheets: list[list[Any]]) -> bytes:
    """A workbook titled "Ward walk" with one section, "Welcome", and these questions."""
    return workbook(
        checklist=[["field", "value"], ["title", "Ward walk"]],
        sections=[["section", "title"], [1, "Welcome"]],
        questions=questions,
        **sheets,
    )


def problems_of(data: bytes) -> list[str]:
    with pytest.raises(BadSpreadsheet) as caught:
        read_checklist(data)
    return [str(p) for p in caught.value.problems]


QUESTIONS_HEADER = ["section", "type", "key", "prompt", "domain", "weight", "required", "min"]


def test_every_problem_is_reported_by_sheet_row_and_column_in_words() -> None:
    data = workbook(
        checklist=[["field", "value"], ["title", "Ward walk"], ["colour", "blue"]],
        sections=[["section", "title"], [1, "Welcome"], [2, "Empty"], [1, "Again"]],
        questions=[
            QUESTIONS_HEADER,
            [1, "rating", "welcome", "Were you welcomed?", "dignity", 0, "yes"],
            [1, "yes_no", "Clean Floors", "Clean floors?", "environment", 1, "maybe"],
            [1, "yes_no", "ok", "Fine?", "overall", "heavy", None, 3],
            [1, "dropdown", "kind", "What kind?", "food"],
            [9, "text", "notes", "Notes", "dignity"],
            [1, "text", "welcome", "", "dignity"],
        ],
        options=[
            ["question", "value", "label"],
            ["welcome", 1, "Poor"],
            ["welcome", 3, "Good"],
            ["nowhere", "x", "X"],
        ],
        extra=[["a"]],
    )
    problems = problems_of(data)
    expected = [
        "Sheet 'extra': this sheet is not read; the sheets are checklist, contributors, "
        "sections, questions, options",
        "Sheet 'checklist', row 3, column 'field': must be one of title, description, "
        "service_kinds",
        "Sheet 'sections', row 4, column 'section': section 1 is listed twice",
        "Sheet 'questions', row 2, column 'weight': must be a number above 0 and at most 100",
        "Sheet 'questions', row 3, column 'key': must be lower-case letters, digits and _, "
        "starting with a letter, with no spaces (at most 64 characters), like dignity_privacy",
        "Sheet 'questions', row 3, column 'required': must be yes or no",
        "Sheet 'questions', row 4, column 'domain': the domain cannot be called 'overall': "
        "that is the scorecard's overall band; name what the questions are about",
        "Sheet 'questions', row 4, column 'weight': must be a number above 0 and at most 100",
        "Sheet 'questions', row 4, column 'min': only number questions have this; leave it blank",
        "Sheet 'questions', row 5, column 'type': must be one of rating, pass_fail, yes_no, "
        "choice, number, text",
        "Sheet 'questions', row 6, column 'section': must be the number of a section in "
        "sheet 'sections'",
        "Sheet 'questions', row 7, column 'prompt': must be filled in",
        "Sheet 'options', row 3, column 'value': must be 2: a rating's labels go 1, 2, 3 ... "
        "lowest first",
        "Sheet 'options', row 4, column 'question': 'nowhere' is not the key of a question in "
        "sheet 'questions'",
        "Sheet 'sections', row 3, column 'section': this section has no questions",
    ]
    for p in expected:
        assert p in problems, "\n".join(problems)


def test_a_rule_across_rows_names_the_row() -> None:
    questions = [
        ["section", "type", "key", "prompt", "domain", "evidence", "evidence_points"],
        [1, "pass_fail", "welcome", "Welcomed?", "dignity"],
        [1, "text", "notes", "Notes", "dignity", "points_at_or_below", 1],
    ]
    data = ward_walk([*questions, [1, "text", "welcome", "Again", "dignity"]])
    assert problems_of(data) == [
        "Sheet 'questions', row 4, column 'key': 'welcome' is the key of row 2 too; keys "
        "must differ",
        "Sheet 'questions', row 3, column 'key': question 'notes': an evidence rule on "
        "points needs a scored question type",
    ]
    # Without the repeated key, the other problem still stands, alone.
    assert problems_of(ward_walk(questions)) == [
        "Sheet 'questions', row 3, column 'key': question 'notes': an evidence rule on "
        "points needs a scored question type"
    ]


def test_a_rule_across_rows_is_reported_beside_the_cells_problems() -> None:
    data = ward_walk(
        [
            ["section", "type", "key", "prompt", "domain", "weight", "min", "max"],
            [1, "rating", "welcome", "Welcomed?", "dignity", "lots"],
            [1, "number", "wait", "Longest wait", "safety", 1, 10, 2],
        ],
        options=[["question", "value", "label"], ["welcome", 1, "Poor"], ["welcome", 2, "Ok"]],
    )
    assert problems_of(data) == [
        "Sheet 'questions', row 2, column 'weight': must be a number above 0 and at most 100",
        "Sheet 'questions', row 3, column 'key': question 'wait': min is greater than max",
    ]


def test_what_is_not_a_workbook_is_said_in_words() -> None:
    assert problems_of(b"title,prompt\nx,y\n") == ["Sheet '(file)': this is not an .xlsx workbook"]
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("xl/big.xml", b"\0" * 30_000_000)
    assert problems_of(out.getvalue()) == [
        "Sheet '(file)': the workbook is too large for a checklist"
    ]
    with zipfile.ZipFile(out := io.BytesIO(), "w") as z:
        z.writestr("hello.txt", b"hi")
    assert problems_of(out.getvalue()) == ["Sheet '(file)': this .xlsx workbook cannot be read"]
    assert problems_of(workbook(questions=[["section"]])) == [
        "Sheet 'checklist': the workbook has no sheet 'checklist' (with its title)"
    ]


def test_a_person_may_type_numbers_and_true_false_and_leave_defaults_blank() -> None:
    data = workbook(
        checklist=[["Field", "Value"], ["title", 2027], ["service_kinds", "care_home ,gp"]],
        sections=[["section", "title"], ["1", "Food"]],
        questions=[
            ["section", "type", "key", "prompt", "domain", "required", "max", "weight"],
            [1, "number", "waits", "Longest wait", "safety", True, "10", "2.5"],
            [1.0, "Yes_No", "hot", "Hot food?", "food", "NO"],
        ],
    )
    checklist = read_checklist(data)
    assert checklist.title == "2027" and checklist.service_kinds == ["care_home", "gp"]
    waits, hot = checklist.content.sections[0].questions
    assert waits == Number(key="waits", prompt="Longest wait", domain="safety", max=10, weight=2.5)
    assert hot == YesNo(key="hot", prompt="Hot food?", domain="food", required=False)
