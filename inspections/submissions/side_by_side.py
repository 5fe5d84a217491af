"""A visit's submissions and each question's answers side by side: what GET
/v1/visits/{id}/submissions answers, callable without HTTP (the visit page shows it too)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from inspections.checklists.queries import version_in_org
from inspections.checklists.questions import questions
from inspections.submissions import queries
from inspections.submissions.schemas import QuestionRow, VisitSubmissions
from inspections.visits.queries import may_see_visit, visit_in_org
from service.auth import Principal
from service.errors import forbidden


async def visit_submissions(
    conn: asyncpg.Connection, principal: Principal, visit_id: UUID
) -> VisitSubmissions:
    """Every submission of the visit, and per question of its pinned checklist version each
    submission's answer (coordinators of the visit's organisation)."""
    if not principal.has("coordinator"):
        raise forbidden("This needs one of the roles: coordinator.")
    visit = await visit_in_org(conn, principal, visit_id)
    may_see_visit(principal, visit)
    rows = await conn.fetch(
        queries.SUBMISSION_SQL + " where s.visit_id = $1 order by s.perspective, u.display_name",
        visit_id,
    )
    answers = await queries.answers_of(conn, [r["id"] for r in rows])
    subs = [queries.submission_from(r, answers[r["id"]]) for r in rows]
    version = await version_in_org(
        conn, principal.organisation_id, visit.checklist_id, visit.checklist_version
    )
    side = []
    for q in questions(version.content):
        by_sub = {}
        for s in subs:
            a = next((a for a in s.answers if a.question_key == q.key), None)
            by_sub[str(s.id)] = None if a is None else a.value
        side.append(
            QuestionRow(question_key=q.key, prompt=q.prompt, domain=q.domain, answers=by_sub)
        )
    return VisitSubmissions(submissions=subs, side_by_side=side)
