"""Checklists as spreadsheets (.xlsx), as field teams author forms with XLSForm.

Pure: ``write_checklist`` turns the checklist the JSON API takes (``ChecklistCreate``) into
workbook bytes, ``read_checklist`` turns workbook bytes back into one, or raises
``BadSpreadsheet`` listing every problem by sheet, row and column in words. Exporting and
importing again gives an identical checklist (tests/test_checklist_spreadsheet.py).

The workbook (README "Checklists as spreadsheets"; the export's "read me" sheet says the same):

- ``checklist``: columns ``field`` and ``value``; rows ``title``, ``description`` and
  ``service_kinds`` (kinds separated by commas, e.g. ``care_home, hospital_ward``).
- ``contributors``: ``name``, ``role``: who co-designed it.
- ``sections``: ``section`` (a number naming the section), ``title``; in the order shown.
- ``questions``: one row a question, in order: ``section`` (its number), ``type``, ``key``,
  ``prompt``, ``help``, ``easy_read``, ``domain``, ``weight``, ``required``, ``allow_na``,
  ``evidence`` (``always`` or ``points_at_or_below``), ``evidence_points``, and by type
  ``good_answer`` (yes_no), ``multiple`` (choice), ``min``/``max``/``unit`` (number),
  ``max_length`` (text). Yes/no columns take ``yes`` or ``no``; a blank cell is the default.
- ``options``: ``question`` (its key), ``value``, ``label``: a choice's options, and a
  rating's labels with ``value`` 1, 2, 3 ... lowest first.

Text keeps its line breaks (a carriage return is read back as a line break) and loses the
other control characters, which a spreadsheet cannot hold; an empty optional text is none.
"""

from __future__ import annotations

import io
import re
import typing
import zipfile
from collections.abc import Iterator
from typing import Any

import msgspec
from openpyxl import Workbook, load_workbook
from openpyxl.cell.cell import Cell
from openpyxl.styles import Font
from openpyxl.worksheet.worksheet import Worksheet

from inspections.checklists.questions import (
    Choice,
    Content,
    Label,
    Number,
    Option,
    PassFail,
    Question,
    Rating,
    Text,
    YesNo,
    content_problems,
    domain_problem,
)
from inspections.checklists.schemas import ChecklistCreate, Contributor
from inspections.services.schemas import Kind
from service.errors import FieldError, Invalid
from service.schema import NonEmpty

MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
# A checklist's workbook is tens of kilobytes; more than this unpacked is not one (or is a
# zip bomb), refused before openpyxl expands it.
MAX_UNPACKED_BYTES = 20_000_000
MAX_PROBLEMS = 200

TYPES: dict[str, type[Question]] = {
    "rating": Rating,
    "pass_fail": PassFail,
    "yes_no": YesNo,
    "choice": Choice,
    "number": Number,
    "text": Text,
}
TYPE_WORDS = ", ".join(TYPES)
CHECKLIST_FIELDS = ("title", "description", "service_kinds")
QUESTION_COLUMNS = (
    "section",
    "type",
    "key",
    "prompt",
    "help",
    "easy_read",
    "domain",
    "weight",
    "required",
    "allow_na",
    "evidence",
    "evidence_points",
    "good_answer",
    "multiple",
    "min",
    "max",
    "unit",
    "max_length",
)
# Columns only some types have: which type, for the message when another type fills one.
ONLY_FOR = {
    "good_answer": "yes_no",
    "multiple": "choice",
    "min": "number",
    "max": "number",
    "unit": "number",
    "max_length": "text",
}
SHEETS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    # sheet: (its columns, those it cannot do without)
    "checklist": (("field", "value"), ("field", "value")),
    "contributors": (("name", "role"), ("name",)),
    "sections": (("section", "title"), ("section", "title")),
    "questions": (QUESTION_COLUMNS, ("section", "type", "key", "prompt", "domain")),
    "options": (("question", "value", "label"), ("question", "value", "label")),
}
README_SHEET = "read me"
README = [
    "This workbook is one inspection checklist. Import it as a new draft on the Checklists "
    "page (or POST /v1/checklists/import). Row 1 of each sheet names its columns.",
    "checklist: one row per field: title, description, service_kinds (kinds separated by "
    "commas, e.g. care_home, hospital_ward).",
    "contributors: name, role: the people who co-designed the checklist.",
    "sections: section (a number that names it), title. Sections appear in this order.",
    "questions: one row per question, in order. section (the section's number), type "
    f"({TYPE_WORDS}), key (lower-case letters, digits and _; unique), prompt, help, "
    "easy_read, domain (what it scores, e.g. dignity), weight (above 0, at most 100), "
    "required, allow_na (yes or no), evidence (blank, always or points_at_or_below) and "
    "evidence_points.",
    "Only some types use these columns: good_answer (yes_no: is yes the good answer?), "
    "multiple (choice: may several be picked?), min, max and unit (number), max_length "
    "(text). A blank cell takes the default.",
    "options: question (its key), value, label. A choice's options (value: a key such as "
    "finger_food), and a rating's labels with value 1, 2, 3 ... lowest first.",
]


class SheetProblem(msgspec.Struct, frozen=True):
    """One thing wrong in an imported workbook, where a person can find it."""

    sheet: str
    row: int | None
    column: str | None
    message: str

    def __str__(self) -> str:
        where = f"Sheet '{self.sheet}'"
        if self.row is not None:
            where += f", row {self.row}"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.message}"


class BadSpreadsheet(Invalid):
    """A 422 whose errors are the workbook's problems, each by sheet, row and column."""

    def __init__(self, problems: list[SheetProblem]) -> None:
        self.problems = problems
        shown = [str(p) for p in problems[:MAX_PROBLEMS]]
        more = len(problems) - len(shown)
        count = f"{len(problems)} problem" + ("s" if len(problems) != 1 else "")
        super().__init__(
            f"The spreadsheet has {count}: " + "; ".join(shown[:3]) + (" ..." if more else ""),
            [FieldError(field="file", reason=s) for s in shown]
            + ([FieldError(field="file", reason=f"and {more} more")] if more else []),
        )
        self.kind = "spreadsheet"


# --- writing ---------------------------------------------------------------------------

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


def _text(value: str) -> str:
    """What a cell can hold: line breaks as \\n, no other control characters."""
    return _CONTROL.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))


def _number(value: float) -> float | str:
    # openpyxl writes numbers with 16 significant digits; the rare float that needs 17
    # goes as its exact text, which the import reads as the same number.
    return value if float(f"{value:.16g}") == value else repr(value)


def _put(ws: Worksheet, row: list[Any]) -> None:
    ws.append(
        [_text(v) if isinstance(v, str) else _number(v) if isinstance(v, float) else v for v in row]
    )
    for cell in ws[ws.max_row]:
        if isinstance(cell, Cell) and isinstance(cell.value, str):
            cell.data_type = "s"  # text that starts with "=" stays text, never a formula


def _yes(value: bool) -> str:
    return "yes" if value else "no"


def _sheet(wb: Workbook, name: str) -> Worksheet:
    ws = wb.create_sheet(name)
    _put(ws, list(SHEETS[name][0]))
    for cell in ws[1]:
        cell.font = Font(bold=True)
    ws.freeze_panes = "A2"
    return ws


def write_checklist(checklist: ChecklistCreate) -> bytes:
    """The checklist as an .xlsx workbook (the layout in this module's docstring)."""
    wb = Workbook()
    readme = wb.active
    assert readme is not None
    readme.title = README_SHEET
    for line in README:
        readme.append([line])
    readme.column_dimensions["A"].width = 120

    ws = _sheet(wb, "checklist")
    _put(ws, ["title", checklist.title])
    _put(ws, ["description", checklist.description or None])
    _put(ws, ["service_kinds", ", ".join(checklist.service_kinds) or None])
    ws = _sheet(wb, "contributors")
    for c in checklist.contributors:
        _put(ws, [c.name, c.role or None])
    sections = _sheet(wb, "sections")
    qs = _sheet(wb, "questions")
    opts = _sheet(wb, "options")
    for n, section in enumerate(checklist.content.sections, start=1):
        _put(sections, [n, section.title])
        for q in section.questions:
            _put(qs, _question_row(n, q))
            match q:
                case Rating(labels=labels):
                    for points, label in enumerate(labels, start=1):
                        _put(opts, [q.key, points, label])
                case Choice(options=options):
                    for o in options:
                        _put(opts, [q.key, o.value, o.label])
                case _:
                    pass
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _question_row(section: int, q: Question) -> list[Any]:
    cells: dict[str, Any] = {
        "section": section,
        "type": type(q).__struct_config__.tag,
        "key": q.key,
        "prompt": q.prompt,
        "help": q.help or None,
        "easy_read": q.easy_read or None,
        "domain": q.domain,
        "weight": q.weight,
        "required": _yes(q.required),
        "allow_na": _yes(q.allow_na),
        "evidence": q.evidence.when if q.evidence else None,
        "evidence_points": q.evidence.points if q.evidence else None,
    }
    match q:
        case YesNo(good_answer=good):
            cells["good_answer"] = _yes(good)
        case Choice(multiple=multiple):
            cells["multiple"] = _yes(multiple)
        case Number(min=lo, max=hi, unit=unit):
            cells.update(min=lo, max=hi, unit=unit or None)
        case Text(max_length=n):
            cells["max_length"] = n
        case _:
            pass
    return [cells.get(c) for c in QUESTION_COLUMNS]


# --- reading ---------------------------------------------------------------------------


class _Row(msgspec.Struct):
    number: int
    cells: dict[str, Any]  # column name -> a non-blank value


class _Reader:
    """Collects every problem while it reads; nothing stops at the first."""

    def __init__(self) -> None:
        self.problems: list[SheetProblem] = []

    def bad(self, sheet: str, row: int | None, column: str | None, message: str) -> None:
        self.problems.append(SheetProblem(sheet, row, column, message))

    def rows(self, wb: Any, name: str) -> list[_Row]:
        ws = _find_sheet(wb, name)
        if ws is None:
            return []
        known, needed = SHEETS[name]
        it: Iterator[tuple[Any, ...]] = ws.iter_rows(values_only=True)
        header = next(it, ())
        columns: list[str | None] = []
        for i, h in enumerate(header):
            col = _blank_to_none(h)
            name_ = (str(col).strip().lower() or None) if col is not None else None
            if name_ is not None and name_ not in known:
                self.bad(
                    name,
                    1,
                    _letter(i),
                    f"'{col}' is not a column of this sheet; its columns are " + ", ".join(known),
                )
                name_ = None
            elif name_ is not None and name_ in columns:
                self.bad(name, 1, _letter(i), f"column '{name_}' appears twice")
                name_ = None
            columns.append(name_)
        rows = []
        for number, values in enumerate(it, start=2):
            cells: dict[str, Any] = {}
            for i, v in enumerate(values):
                v = _blank_to_none(v)
                if v is None:
                    continue
                if i >= len(columns) or columns[i] is None:
                    self.bad(name, number, _letter(i), "this column has no name in row 1")
                    continue
                cells[columns[i]] = v  # type: ignore[index]
            if cells:
                rows.append(_Row(number, cells))
        missing = [c for c in needed if c not in columns]
        if missing and (rows or name == "checklist"):
            for c in missing:
                self.bad(name, 1, None, f"there is no column '{c}'")
            return []
        return rows


def _blank_to_none(v: Any) -> Any:
    # Only an empty cell is blank: a name of one space is still a name (as in the API).
    return None if v is None or v == "" else v


def _letter(index: int) -> str:
    from openpyxl.utils import get_column_letter

    return get_column_letter(index + 1)


def _find_sheet(wb: Any, name: str) -> Any:
    for ws in wb.worksheets:
        if ws.title.strip().lower() == name:
            return ws
    return None


def _info(tp: Any) -> Any:
    """msgspec's description of a field's type, without None and the docs metadata."""
    info = msgspec.inspect.type_info(tp)
    if isinstance(info, msgspec.inspect.UnionType):
        info = next(t for t in info.types if not isinstance(t, msgspec.inspect.NoneType))
    if isinstance(info, msgspec.inspect.Metadata):
        info = info.type
    return info


def _hint_words(tp: Any) -> str:
    """What a field's type allows, in words (from its msgspec constraints)."""
    info = _info(tp)
    if isinstance(info, (msgspec.inspect.FloatType, msgspec.inspect.IntType)):
        words = "a whole number" if isinstance(info, msgspec.inspect.IntType) else "a number"
        bounds = []
        if info.gt is not None:
            bounds.append(f"above {info.gt:g}")
        if info.ge is not None:
            bounds.append(f"at least {info.ge:g}")
        if info.lt is not None:
            bounds.append(f"below {info.lt:g}")
        if info.le is not None:
            bounds.append(f"at most {info.le:g}")
        return words + (" " + " and ".join(bounds) if bounds else "")
    if isinstance(info, msgspec.inspect.StrType):
        if info.pattern is not None:
            return (
                "lower-case letters, digits and _, starting with a letter, with no spaces "
                f"(at most {_pattern_length(info.pattern)} characters), like dignity_privacy"
            )
        if info.max_length is not None:
            return f"text of at most {info.max_length} characters"
        return "text"
    if isinstance(info, msgspec.inspect.BoolType):
        return "yes or no"
    return "filled in correctly"


def _pattern_length(pattern: str) -> int:
    m = re.search(r"\{\d+,(\d+)\}", pattern)
    return int(m.group(1)) + 1 if m else 64


_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


def _cell(tp: Any, value: Any) -> tuple[Any, str | None]:
    """The cell's value as the field's type, or why it cannot be."""
    info = _info(tp)
    if isinstance(info, msgspec.inspect.BoolType):
        if isinstance(value, bool):
            return value, None
        word = str(value).strip().lower()
        if word in _YES or word in _NO:
            return word in _YES, None
        return None, "must be yes or no"
    if isinstance(info, (msgspec.inspect.FloatType, msgspec.inspect.IntType)):
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                return None, f"must be {_hint_words(tp)}"
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None, f"must be {_hint_words(tp)}"
        if isinstance(info, msgspec.inspect.IntType):
            if value != int(value):
                return None, f"must be {_hint_words(tp)}"
            value = int(value)
    elif isinstance(info, msgspec.inspect.StrType):
        if isinstance(value, bool):
            value = _yes(value)
        elif isinstance(value, float) and value.is_integer():
            value = str(int(value))
        elif not isinstance(value, str):
            value = str(value)
    try:
        return msgspec.convert(value, tp), None
    except msgspec.ValidationError:
        if isinstance(info, msgspec.inspect.StrType) and info.min_length and not value:
            return None, "must be filled in"
        return None, f"must be {_hint_words(tp)}"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls, include_extras=True)


def _open(data: bytes) -> Any:
    """The workbook, or a problem a person can act on (never a 500 for a bad file)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            unpacked = sum(i.file_size for i in z.infolist())
    except (zipfile.BadZipFile, ValueError, OSError):
        unpacked = None
    if unpacked is None:
        raise BadSpreadsheet(
            [SheetProblem("(file)", None, None, "this is not an .xlsx workbook")]
        ) from None
    if unpacked > MAX_UNPACKED_BYTES:
        raise BadSpreadsheet(
            [SheetProblem("(file)", None, None, "the workbook is too large for a checklist")]
        )
    try:
        return load_workbook(io.BytesIO(data), data_only=True)
    except Exception:  # openpyxl raises many kinds for a damaged file; all are the file's fault
        raise BadSpreadsheet(
            [SheetProblem("(file)", None, None, "this .xlsx workbook cannot be read")]
        ) from None


def read_checklist(data: bytes) -> ChecklistCreate:
    """The checklist in an .xlsx workbook, or ``BadSpreadsheet`` with every problem."""
    wb = _open(data)
    r = _Reader()
    for ws in wb.worksheets:
        name = ws.title.strip().lower()
        if name not in SHEETS and name != README_SHEET:
            r.bad(
                ws.title,
                None,
                None,
                "this sheet is not read; the sheets are " + ", ".join(SHEETS),
            )
    if _find_sheet(wb, "checklist") is None:
        r.bad("checklist", None, None, "the workbook has no sheet 'checklist' (with its title)")

    doc: dict[str, Any] = {}
    hints = _hints(ChecklistCreate)
    for row in r.rows(wb, "checklist"):
        field = str(row.cells.get("field", "")).strip().lower()
        if field not in CHECKLIST_FIELDS:
            r.bad("checklist", row.number, "field", "must be one of " + ", ".join(CHECKLIST_FIELDS))
            continue
        if field in doc:
            r.bad("checklist", row.number, "field", f"'{field}' is given twice")
            continue
        value = row.cells.get("value")
        if field == "service_kinds":
            kinds = [k.strip() for k in str(value or "").split(",") if k.strip()]
            got, why = _cell(hints[field], kinds)
            if why:
                why = "must be kinds of service separated by commas, each " + _hint_words(Kind)
        elif value is None:
            got, why = None, None
        else:
            got, why = _cell(hints[field], value)
        if why:
            r.bad("checklist", row.number, "value", why)
        elif got is not None:
            doc[field] = got
    if "title" not in doc and not any(p.sheet == "checklist" for p in r.problems):
        r.bad("checklist", None, None, "give the checklist a title (a row 'title')")

    contributors = []
    c_hints = _hints(Contributor)
    for row in r.rows(wb, "contributors"):
        contributor = _fields(r, "contributors", row, c_hints)
        if contributor is not None:
            contributors.append(contributor)
    doc["contributors"] = contributors

    section_rows = _read_sections(r, wb)
    questions_by_section, question_rows = _read_questions(r, wb, section_rows)
    _read_options(r, wb, question_rows)
    sections = []
    rows_of: list[list[_Row]] = []  # each section's question rows, for content_problems
    for number, (row, title) in section_rows.items():
        qs = questions_by_section.get(number)
        if qs is None:
            r.bad("sections", row.number, "section", "this section has no questions")
        sections.append({"title": title, "questions": [q for q, _ in qs or []]})
        rows_of.append([qr for _, qr in qs or []])
    doc["content"] = {"sections": sections}

    if r.problems:
        # The rules across questions, on the rows that are right so far: every problem at once.
        kept = [(s, rows) for s, rows in zip(sections, rows_of, strict=True) if s["questions"]]
        try:
            content = msgspec.convert({"sections": [s for s, _ in kept]}, Content)
        except msgspec.ValidationError:
            content = None  # a rating's labels are already reported; the rest can wait
        if content is not None:
            for e in content_problems(content):
                r.problems.append(_place(f"{e.reason} at `{e.field}`", [x for _, x in kept]))
        raise BadSpreadsheet(r.problems)
    try:
        checklist = msgspec.convert(doc, ChecklistCreate)
    except msgspec.ValidationError as exc:  # a rule the cell checks did not know
        raise BadSpreadsheet([_place(str(exc), rows_of)]) from None
    for e in content_problems(checklist.content):
        r.problems.append(_place(f"{e.reason} at `{e.field}`", rows_of))
    if r.problems:
        raise BadSpreadsheet(r.problems)
    return checklist


def _fields(r: _Reader, sheet: str, row: _Row, hints: dict[str, Any]) -> dict[str, Any] | None:
    out: dict[str, Any] = {}
    ok = True
    for column, value in row.cells.items():
        got, why = _cell(hints[column], value)
        if why:
            r.bad(sheet, row.number, column, why)
            ok = False
        else:
            out[column] = got
    for column in hints:
        if column not in out and column in SHEETS[sheet][1] and column not in row.cells:
            r.bad(sheet, row.number, column, "must be filled in")
            ok = False
    return out if ok else None


def _read_sections(r: _Reader, wb: Any) -> dict[int, tuple[_Row, str]]:
    out: dict[int, tuple[_Row, str]] = {}
    for row in r.rows(wb, "sections"):
        number, why = _cell(int, row.cells.get("section", ""))
        if why or number is None:
            r.bad("sections", row.number, "section", "must be a whole number naming the section")
            continue
        if number in out:
            r.bad("sections", row.number, "section", f"section {number} is listed twice")
            continue
        title, why = _cell(NonEmpty, row.cells.get("title", ""))
        if why:
            r.bad("sections", row.number, "title", why)
            continue
        out[number] = (row, title)
    return out


def _read_questions(
    r: _Reader, wb: Any, sections: dict[int, tuple[_Row, str]]
) -> tuple[dict[int, list[tuple[dict[str, Any], _Row]]], dict[str, tuple[dict[str, Any], _Row]]]:
    by_section: dict[int, list[tuple[dict[str, Any], _Row]]] = {}
    by_key: dict[str, tuple[dict[str, Any], _Row]] = {}
    for row in r.rows(wb, "questions"):
        cells = dict(row.cells)
        kind = str(cells.pop("type", "")).strip().lower()
        if kind not in TYPES:
            r.bad("questions", row.number, "type", f"must be one of {TYPE_WORDS}")
            continue
        hints = _hints(TYPES[kind])
        q: dict[str, Any] = {"type": kind}
        ok = True
        number, why = _cell(int, cells.pop("section", ""))
        if why or number not in sections:
            r.bad(
                "questions",
                row.number,
                "section",
                "must be the number of a section in sheet 'sections'",
            )
            ok = False
        when = cells.pop("evidence", None)
        points = cells.pop("evidence_points", None)
        if when is not None or points is not None:
            rule: dict[str, Any] = {}
            if when is not None:
                rule["when"] = str(when).strip().lower()
                if rule["when"] not in ("always", "points_at_or_below"):
                    r.bad(
                        "questions",
                        row.number,
                        "evidence",
                        "must be blank, always or points_at_or_below",
                    )
                    ok = False
            else:
                r.bad(
                    "questions",
                    row.number,
                    "evidence",
                    "fill this in (points_at_or_below) when evidence_points is given",
                )
                ok = False
            if points is not None:
                rule["points"], why = _cell(float, points)
                if why:
                    r.bad("questions", row.number, "evidence_points", why)
                    ok = False
            q["evidence"] = rule
        for column, value in cells.items():
            if column not in hints:
                r.bad(
                    "questions",
                    row.number,
                    column,
                    f"only {ONLY_FOR.get(column, '?')} questions have this; leave it blank",
                )
                ok = False
                continue
            if column == "domain" and (why := domain_problem(value)) is not None:
                r.bad("questions", row.number, column, why)
                ok = False
                continue
            got, why = _cell(hints[column], value)
            if why:
                r.bad("questions", row.number, column, why)
                ok = False
            else:
                q[column] = got
        for column in ("key", "prompt", "domain"):
            if column not in row.cells:
                r.bad("questions", row.number, column, "must be filled in")
                ok = False
        key = str(row.cells.get("key", "")).strip()
        if key in by_key:
            r.bad(
                "questions",
                row.number,
                "key",
                f"'{key}' is the key of row {by_key[key][1].number} too; keys must differ",
            )
            ok = False
        elif key:
            # Known even when its row has problems, so its options are still checked.
            by_key[key] = (q, row)
        if kind == "rating":
            q["labels"] = []
        if kind == "choice":
            q["options"] = []
        if number in sections:
            # Its section has a question (even one with problems, reported above).
            by_section.setdefault(number, [])
        if ok:
            by_section[number].append((q, row))
    return by_section, by_key


def _read_options(r: _Reader, wb: Any, questions: dict[str, tuple[dict[str, Any], _Row]]) -> None:
    value_type = _hints(Option)["value"]
    for row in r.rows(wb, "options"):
        key = str(row.cells.get("question", "")).strip()
        found = questions.get(key)
        if found is None:
            r.bad(
                "options",
                row.number,
                "question",
                f"'{key}' is not the key of a question in sheet 'questions'",
            )
            continue
        q, _ = found
        label, why = _cell(Label, row.cells.get("label", ""))
        if why:
            r.bad("options", row.number, "label", why)
        raw = row.cells.get("value", "")
        if q["type"] == "rating":
            want = len(q["labels"]) + 1
            points, bad = _cell(int, raw)
            if bad or points != want:
                r.bad(
                    "options",
                    row.number,
                    "value",
                    f"must be {want}: a rating's labels go 1, 2, 3 ... lowest first",
                )
            q["labels"].append(label)
        elif q["type"] == "choice":
            value, bad = _cell(value_type, raw)
            if bad:
                r.bad("options", row.number, "value", bad)
            q["options"].append({"value": value, "label": label})
        else:
            r.bad(
                "options",
                row.number,
                "question",
                f"'{key}' is a {q['type']} question; only rating and choice questions have options",
            )
    for key, (q, row) in questions.items():
        if q["type"] == "rating" and not 2 <= len(q["labels"]) <= 10:
            r.bad(
                "questions",
                row.number,
                "type",
                f"rating '{key}' needs 2 to 10 labels in sheet 'options' (values 1, 2 ...)",
            )
        if q["type"] == "choice" and not 1 <= len(q["options"]) <= 50:
            r.bad(
                "questions",
                row.number,
                "type",
                f"choice '{key}' needs 1 to 50 options in sheet 'options'",
            )


_PATH = re.compile(r"`\$\.content\.sections\[(\d+)\](?:\.questions\[(\d+)\](?:\.(\w+))?)?")


def _place(message: str, rows_of: list[list[_Row]]) -> SheetProblem:
    """A problem msgspec or the content rules found, put on the row it is about."""
    m = _PATH.search(message)
    words = re.sub(r"\s*(?:-\s*)?at `\$[^`]*`", "", message).strip()
    if m and m.group(2) is not None:
        row = rows_of[int(m.group(1))][int(m.group(2))]
        column = m.group(3) if m.group(3) in QUESTION_COLUMNS else "key"
        return SheetProblem("questions", row.number, column, words)
    return SheetProblem("checklist", None, None, words)
