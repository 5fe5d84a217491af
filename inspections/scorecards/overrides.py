"""Which coordinator band override applies to a scorecard: the one rule, for the scorecard,
its page and the league table alike.

A coordinator overrides a service's overall band for a period (``period_from`` to
``period_to``) with a reason. The override applies to a scorecard of that service when

1. the scorecard's period overlaps the override's period (so the default "last 12 months
   ending now" shows an override recorded for the year to last week), and
2. no new evidence has arrived since: no final submission counted in that scorecard was
   finalised after the override was recorded.

Among overlapping overrides the most recently recorded one is taken; if new evidence has
arrived since it, the computed band stands (older overrides are older still) and the
scorecard says the override lapsed. Overrides are never deleted: each is audited.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any
from uuid import UUID

import asyncpg

from inspections.scorecards.schemas import Override
from service.db import from_row

# Per service, the newest override overlapping [$2, $3), and whether a final submission
# counted in that period was finalised after it was recorded (then it no longer applies).
OVERRIDES_SQL = """
    select distinct on (o.service_id)
           o.service_id, o.band, o.reason, o.created_by by, u.display_name by_name,
           o.created_at at, o.period_from, o.period_to,
           exists (select 1 from visits v
                     join submissions s on s.visit_id = v.id and s.state = 'final'
                    where v.service_id = o.service_id
                      and v.starts_at >= $2 and v.starts_at < $3
                      and s.finalised_at > o.created_at) as lapsed
      from scorecard_overrides o
      join users u on u.id = o.created_by
     where o.service_id = any($1::uuid[]) and o.period_from < $3 and o.period_to > $2
     order by o.service_id, o.created_at desc, o.id desc"""


def _override(row: Any) -> Override:
    return from_row(Override, row)


async def overrides_for(
    db: asyncpg.Connection, service_ids: Sequence[UUID], start: dt.datetime, end: dt.datetime
) -> dict[UUID, tuple[Override | None, Override | None]]:
    """Per service: (the override that applies, the newest one that lapsed), else absent."""
    out: dict[UUID, tuple[Override | None, Override | None]] = {}
    for r in await db.fetch(OVERRIDES_SQL, list(service_ids), start, end):
        o = _override(r)
        out[r["service_id"]] = (None, o) if r["lapsed"] else (o, None)
    return out
