"""Who is told what about findings: the outbox notices, written in the change's transaction.

Emails say little (email is not a safe channel) and link to the signed-in API or the
public report; webhook payloads carry ids and states, never names or descriptions of
safeguarding concerns.
"""

from __future__ import annotations

import datetime as dt
from typing import Any
from uuid import UUID

import asyncpg

from inspections.notifications.outbox import Notice, enqueue
from inspections.wording import day_month, weekday_date
from service.settings import Settings


def base_url(settings: Settings) -> str:
    return (settings.public_base_url or f"http://{settings.host}:{settings.port}").rstrip("/")


async def _emails(db: asyncpg.Connection, sql: str, *args: Any) -> list[str]:
    return [r[0] for r in await db.fetch(sql, *args)]


async def managers(db: asyncpg.Connection, service_id: UUID) -> list[str]:
    return await _emails(
        db,
        """select u.email from service_managers m join users u on u.id = m.user_id
            where m.service_id = $1 and u.active""",
        service_id,
    )


async def with_role(db: asyncpg.Connection, organisation_id: UUID, role: str) -> list[str]:
    return await _emails(
        db,
        "select email from users where organisation_id = $1 and active and $2 = any(roles)",
        organisation_id,
        role,
    )


async def safeguarding_raised(
    db: asyncpg.Connection, settings: Settings, org: UUID, finding_id: UUID, service: Any
) -> None:
    # Leads who manage the service are not told: it is never shown to its managers.
    leads = await _emails(
        db,
        """select email from users u where organisation_id = $1 and active
              and 'safeguarding_lead' = any(roles)
              and not exists (select 1 from service_managers m
                               where m.service_id = $2 and m.user_id = u.id)""",
        org,
        service["id"],
    )
    if not leads:  # someone must be told: coordinators stand in for a missing lead
        leads = await with_role(db, org, "coordinator")
    await enqueue(
        db,
        org,
        Notice(
            event="safeguarding.raised",
            key=f"safeguarding.raised:{finding_id}",
            subject="Safeguarding concern raised: please act today",
            text=(
                f"An inspector raised a safeguarding concern during a visit to "
                f"{service['name']}.\n\nSign in to read it and record its handling:\n"
                f"{base_url(settings)}/v1/findings/{finding_id}\n\n"
                "For your safety and theirs, the details are not in this email."
            ),
            payload={"finding_id": str(finding_id), "service_id": str(service["id"])},
        ),
        leads,
    )


async def factual_check(db: asyncpg.Connection, settings: Settings, org: UUID, report: Any) -> None:
    await enqueue(
        db,
        org,
        Notice(
            event="report.factual_check",
            key=f"report.factual_check:{report['id']}",
            subject=f"Please check the facts of a report on {report['service_name']}",
            text=(
                f"A report of the visit to {report['service_name']} is ready for you to check "
                "its factual accuracy before it is published. It will be published whether "
                f"or not you comment.\n\n{base_url(settings)}/v1/reports/{report['id']}\n"
            ),
            payload={"report_id": str(report["id"]), "service_id": str(report["service_id"])},
        ),
        await managers(db, report["service_id"]),
    )


async def report_published(
    db: asyncpg.Connection,
    settings: Settings,
    org: UUID,
    report: Any,
    recommendations: list[Any],
    due_on: dt.date,
) -> None:
    lines = "\n".join(f"- {r['title']}: {r['recommendation']}" for r in recommendations)
    url = f"{base_url(settings)}/public/reports/{report['id']}"
    await enqueue(
        db,
        org,
        Notice(
            event="report.published",
            key=f"report.published:{report['id']}",
            subject=f"Inspection report published: {report['service_name']}",
            text=(
                f"The report of the visit to {report['service_name']} is published:\n{url}\n\n"
                + (
                    f"Please respond to each recommendation by {weekday_date(due_on)} "
                    f"(accept with an action plan, or decline with a reason):\n{lines}\n"
                    if recommendations
                    else "It makes no recommendations.\n"
                )
            ),
            payload={
                "report_id": str(report["id"]),
                "service_id": str(report["service_id"]),
                "url": url,
                "due_on": due_on.isoformat() if recommendations else None,
                "finding_ids": [str(r["id"]) for r in recommendations],
            },
        ),
        await managers(db, report["service_id"]),
    )


async def response_posted(
    db: asyncpg.Connection, settings: Settings, org: UUID, finding: Any, decision: str
) -> None:
    team = await _emails(
        db,
        """select u.email from visit_members m join users u on u.id = m.user_id
            where m.visit_id = $1 and u.active""",
        finding.visit_id,
    )
    await enqueue(
        db,
        org,
        Notice(
            event="response.posted",
            key=f"response.posted:{finding.id}",
            subject=f"{finding.service_name} {decision} a recommendation",
            text=(
                f"{finding.service_name} {decision} the recommendation "
                f'"{finding.title}".\n\n{base_url(settings)}/v1/findings/{finding.id}\n'
            ),
            payload={
                "finding_id": str(finding.id),
                "service_id": str(finding.service_id),
                "decision": decision,
            },
        ),
        [*team, *await with_role(db, org, "coordinator")],
    )


async def verification_requested(
    db: asyncpg.Connection, settings: Settings, org: UUID, finding: Any, round_: int
) -> None:
    # Ideally someone of the original team checks: its citizens first, else every cleared
    # citizen inspector would be noise, so coordinators arrange it.
    citizens = await _emails(
        db,
        """select u.email from visit_members m join users u on u.id = m.user_id
            where m.visit_id = $1 and m.perspective = 'citizen' and u.active""",
        finding.visit_id,
    )
    await enqueue(
        db,
        org,
        Notice(
            event="verification.requested",
            key=f"verification.requested:{finding.id}:{round_}",
            subject=f"Please check a fix at {finding.service_name}",
            text=(
                f"{finding.service_name} says it has done what it accepted for "
                f'"{finding.title}". Did it really change? Confirm or dispute it:\n'
                f"{base_url(settings)}/v1/findings/{finding.id}\n"
            ),
            payload={"finding_id": str(finding.id), "service_id": str(finding.service_id)},
        ),
        citizens or await with_role(db, org, "coordinator"),
    )


async def reminder(db: asyncpg.Connection, settings: Settings, row: Any, event: str) -> int:
    """A response due soon, or overdue: to the managers (and coordinators when overdue)."""
    emails = await managers(db, row["service_id"])
    if event == "response.overdue":
        emails += await with_role(db, row["organisation_id"], "coordinator")
        subject = f"Overdue: a response from {row['service_name']}"
        text = (
            f'The response to "{row["title"]}" was due on {weekday_date(row["due_on"])} '
            "and has not been given. The report says so publicly until it is.\n"
        )
    else:
        subject = f"Response due {day_month(row['due_on'])}: {row['service_name']}"
        text = (
            f'Please respond to "{row["title"]}" by {weekday_date(row["due_on"])}: accept '
            "with an action plan, or decline with a reason.\n"
        )
    return await enqueue(
        db,
        row["organisation_id"],
        Notice(
            event=event,
            key=f"{event}:{row['id']}:{row['due_on']}",
            subject=subject,
            text=text + f"\n{base_url(settings)}/v1/findings/{row['id']}\n",
            payload={
                "finding_id": str(row["id"]),
                "service_id": str(row["service_id"]),
                "due_on": row["due_on"].isoformat(),
            },
        ),
        emails,
    )
