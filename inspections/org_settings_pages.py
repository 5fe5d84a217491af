"""``/settings``: a coordinator's organisation settings on one page, a form per section.

Each section is one that ``org_settings.settings_routes`` made JSON routes for (listed in
``org_settings.SECTIONS``): the form's fields come from the section's Struct (numbers with
their limits, checkboxes, text, choices), and saving goes through ``save_section``, the
function the PATCH route calls: the same rules, the same check, the same audit row (only
the fields the form changed, as a PATCH of those fields). Fields the form cannot show
sensibly (lists) are shown read-only; the API changes them.

Template: inspections/web/templates/org_settings/settings.html.
"""

from __future__ import annotations

import functools
import re
import typing
from dataclasses import dataclass
from typing import Any

import msgspec
from litestar import Response, get, post
from litestar.params import FromPath, FromQuery
from litestar.response import Template
from msgspec import inspect as mi

from inspections.org_settings import SECTIONS, Section, read_section, save_section
from inspections.web.screens import Refused, read_form, screen, screens_router, see_other, submit
from service.auth import AuthedRequest, coordinator_only
from service.db import DB
from service.errors import not_found

# Per section: its heading, what it is for, and each field's label and help, in plain words.
# A section or field missing here still shows, titled from its name.
TITLES = {
    "retention": "How long data is kept",
    "scoring": "Scorecards",
    "findings": "Findings and response deadlines",
    "public": "Public profile",
}
INTROS = {
    "retention": "Each night the retention job deletes or anonymises what is older than "
    "these periods, and records what it did in the audit log. Periods are in days "
    "(365 is a year; 2190 is six years).",
    "scoring": "How submissions are combined into a service's scorecard and band.",
    "findings": "How the deadline for a service's response to a recommendation is counted.",
    "public": "What the public pages say about your organisation.",
}
LABELS: dict[str, dict[str, str]] = {
    "retention": {
        "photo_originals_days": "Original photos (with location), days",
        "photo_derivatives_days": "Photo copies shown on pages, days",
        "submissions_days": "Submissions' comments, days",
        "findings_days": "Closed findings' notes, days",
        "outbox_email_body_days": "Email bodies, days",
        "outbox_days": "Notification records, days",
        "revoked_devices_days": "Signed-out devices, days",
        "signin_attempts_days": "Used or expired password reset links, days",
        "expired_invites_days": "Unaccepted invites, days",
        "audit_days": "Audit log, days",
        "keep_erased_evidence": "Keep an erased person's photos as evidence",
    },
    "scoring": {
        "citizen_weight": "Weight of citizen inspectors' scores",
        "band_thresholds": "Band thresholds (percent)",
        "min_submissions": "Fewest submissions for a confident score",
        "gap_threshold": "Gap between perspectives worth a note (points)",
    },
    "findings": {
        "jurisdiction": "Bank holidays of",
        "response_working_days": "Working days to respond",
        "reminder_working_days": "Working days before the deadline to remind",
    },
    "public": {"public_contact": "How the public contacts you"},
}
HINTS: dict[str, dict[str, str]] = {
    "retention": {
        "photo_originals_days": "Then the original file is deleted from the store and the "
        "photo's location and camera details are removed. The first to go.",
        "photo_derivatives_days": "Then the photo is deleted altogether. At least as long "
        "as the originals.",
        "submissions_days": "Then free-text comments and the phone's name are cleared; the "
        "scores stay.",
        "findings_days": "After a finding is closed: then its progress notes and action "
        "owners (and a safeguarding concern's description) are cleared.",
        "outbox_email_body_days": "After sending or failing: then the email's text (with "
        "invite and reset links) is cleared.",
        "outbox_days": "Then sent or failed notifications are deleted. At least as long as "
        "email bodies.",
        "revoked_devices_days": "After a phone or browser is signed out: then its record is "
        "deleted.",
        "signin_attempts_days": "Then they are deleted.",
        "expired_invites_days": "After an invite expires: then it, with its email address, "
        "is deleted.",
        "audit_days": "Then audit log entries are deleted.",
        "keep_erased_evidence": "When a person is erased their originals always go; ticked, "
        "the copies without location stay as evidence behind reports.",
    },
    "scoring": {
        "citizen_weight": "0.5 weighs citizen and professional inspectors equally.",
        "min_submissions": "Fewer than this and the score is marked low confidence.",
    },
    "findings": {
        "response_working_days": "Healthwatch: 20 working days.",
    },
    "public": {
        "public_contact": 'An email address, a web address or words like "Freephone 0800 '
        "123 4567\". Your organisation's, not a person's: it is public. Leave empty for none.",
    },
}
CHOICES = {"england-and-wales": "England and Wales", "northern-ireland": "Northern Ireland"}
_NONE = mi.NoneType


@dataclass(frozen=True)
class Field:
    """One input of a section's form, read from the section Struct's type."""

    name: str
    id: str  # unique on the page: "<section>-<name>"
    label: str
    hint: str
    kind: str  # number, checkbox, text, select, readonly
    nullable: bool = False
    low: float | None = None
    high: float | None = None
    step: str = "1"
    maxlength: int | None = None
    options: tuple[tuple[str, str], ...] = ()


def _limits(t: mi.IntType | mi.FloatType) -> tuple[float | None, float | None, str]:
    """min, max and the words for them (an exclusive bound is said as such)."""
    low = t.ge if t.ge is not None else t.gt
    high = t.le if t.le is not None else t.lt
    words = ""
    if low is not None and high is not None:
        words = (
            f"More than {low:g}, at most {high:g}."
            if t.gt is not None
            else f"From {low:g} to {high:g}."
        )
    return low, high, words


def _field(s: Section, f: mi.Field) -> Field:
    t, nullable = f.type, False
    if isinstance(t, mi.UnionType):
        rest = [a for a in t.types if not isinstance(a, _NONE)]
        t, nullable = (rest[0], True) if len(rest) == 1 else (t, False)
    label = LABELS.get(s.section, {}).get(f.name) or f.name.replace("_", " ").capitalize()
    hint = HINTS.get(s.section, {}).get(f.name, "")
    common = {"name": f.name, "id": f"{s.section}-{f.name}", "label": label, "nullable": nullable}
    if isinstance(t, mi.IntType | mi.FloatType):
        low, high, words = _limits(t)
        step = "1" if isinstance(t, mi.IntType) else "any"
        hint = " ".join(w for w in (hint, words) if w)
        return Field(**common, hint=hint, kind="number", low=low, high=high, step=step)
    if isinstance(t, mi.BoolType):
        return Field(**common, hint=hint, kind="checkbox")
    if isinstance(t, mi.StrType):
        return Field(**common, hint=hint, kind="text", maxlength=t.max_length)
    if isinstance(t, mi.LiteralType | mi.EnumType):
        values = t.values if isinstance(t, mi.LiteralType) else [e.value for e in t.cls]
        options = tuple((str(v), CHOICES.get(str(v), str(v).capitalize())) for v in values)
        return Field(**common, hint=hint, kind="select", options=options)
    # A list or nested value has no one sensible input: shown, changed through the API.
    return Field(**common, hint=hint, kind="readonly")


@functools.cache
def fields_of(s: Section) -> tuple[Field, ...]:
    info = mi.type_info(s.typ)
    assert isinstance(info, mi.StructType)
    return tuple(_field(s, f) for f in info.fields)


@functools.cache
def form_struct(s: Section) -> type[msgspec.Struct]:
    """The section's patch Struct cut down to the fields the form shows, with the patch's
    own types (so its limits): what ``read_form`` reads a posted section as."""
    hints = typing.get_type_hints(s.patch_typ, include_extras=True)
    editable = [
        (f.name, hints[f.name], msgspec.UNSET) for f in fields_of(s) if f.kind != "readonly"
    ]
    return msgspec.defstruct(f"{s.patch_typ.__name__}Form", editable, kw_only=True)


def _shown(value: Any) -> str:
    """A current value as the form shows it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        return ", ".join(_shown(v) for v in value)
    return "" if value is None else str(value)


def _section(name: str) -> Section:
    s = SECTIONS.get(name)
    if s is None:
        raise not_found("settings section")
    return s


def _beside_fields(s: Section, errors: list[dict[str, str]]) -> list[dict[str, str]]:
    """Errors keyed by the inputs' ids; a check's refusal that names fields (check_retention:
    "x must be at least y") goes beside the first it names, with the fields' labels."""
    fields = {f.name: f for f in fields_of(s)}
    out = []
    for e in errors:
        field, message = e["field"], e["message"]
        if field not in fields:
            named = [n for n in re.findall(r"\w+", message) if n in fields]
            field = named[0] if named else field
            for n in named:
                message = message.replace(n, f"“{fields[n].label}”")
        out.append(
            {"field": fields[field].id if field in fields else s.section, "message": message}
        )
    return out


async def _page(
    request: AuthedRequest,
    db: DB,
    *,
    posted: str = "",
    values: dict[str, str] | None = None,
    errors: list[dict[str, str]] | None = None,
    status: int = 200,
    saved: str = "",
    unchanged: bool = False,
) -> Template:
    org = request.user.organisation_id
    sections = []
    # The sections this page knows first (the retention schedule leads), then any other.
    order = sorted(SECTIONS, key=lambda n: list(TITLES).index(n) if n in TITLES else len(TITLES))
    for name in order:
        s = SECTIONS[name]
        current = msgspec.to_builtins(await read_section(db, org, name, s.typ))
        shown = {k: _shown(v) for k, v in current.items()}
        if name == posted and values is not None:
            shown |= values  # what was typed, kept beside its errors
        sections.append(
            {
                "name": name,
                "title": TITLES.get(name) or name.replace("_", " ").capitalize(),
                "intro": INTROS.get(name, ""),
                "fields": fields_of(s),
                "values": shown,
                "saved": saved == name,
                "unchanged": unchanged and saved == name,
            }
        )
    return screen(
        request,
        "org_settings/settings.html",
        status=status,
        sections=sections,
        errors=errors or [],
    )


@get("/", guards=coordinator_only)
async def settings_page(
    request: AuthedRequest, db: DB, saved: FromQuery[str] = "", unchanged: FromQuery[str] = ""
) -> Template:
    return await _page(
        request, db, saved=saved if saved in SECTIONS else "", unchanged=bool(unchanged)
    )


@post("/{section:str}", guards=coordinator_only)
async def save_settings(
    section: FromPath[str], request: AuthedRequest, db: DB
) -> Template | Response[None]:
    s = _section(section)
    fields = [f for f in fields_of(s) if f.kind != "readonly"]
    labels = {f.name: f.label for f in fields}
    raw = await request.form()
    # A checkbox sends "true" then its hidden "false" (read_form takes the first): unticked
    # is a value too. What was typed is shown again if the section is refused.
    values = {f.name: str(raw.get(f.name, "")) for f in fields}
    data = await read_form(request, form_struct(s), labels)
    blank = [
        {"field": f.name, "message": f"Enter {f.label[0].lower()}{f.label[1:]}"}
        for f in fields
        if not f.nullable and f.kind in ("number", "text") and values[f.name].strip() == ""
    ]
    if blank:
        data = blank  # read_form would leave an emptied field unchanged: say so instead
    patch: Any = data
    unchanged = False
    if not isinstance(data, list):
        sent = msgspec.to_builtins(data)
        for f in fields:
            if f.nullable and values[f.name].strip() == "":
                sent[f.name] = None  # an empty optional text field clears it
        current = msgspec.to_builtins(
            await read_section(db, request.user.organisation_id, section, s.typ)
        )
        # Only what changed, as a PATCH of those fields: the audit row says what the API's would.
        changes = {k: v for k, v in sent.items() if current.get(k) != v}
        unchanged = not changes
        patch = msgspec.convert(changes, s.patch_typ)
    if unchanged:
        return see_other(f"/settings?saved={section}&unchanged=1#{section}")
    done = await submit(db, patch, lambda p: save_section(db, request, s, p), labels)
    if isinstance(done, Refused):
        return await _page(
            request,
            db,
            posted=section,
            values=values,
            errors=_beside_fields(s, done.errors),
            status=done.status,
        )
    return see_other(f"/settings?saved={section}#{section}")


router = screens_router("/settings", [settings_page, save_settings])
