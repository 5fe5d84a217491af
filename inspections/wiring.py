"""What the app shell needs from the domain: routes, migrations, and how to load a caller."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspections import org_settings_pages
from inspections.accounts import people_pages, privacy_notice, signin_page
from inspections.accounts import routes as accounts
from inspections.accounts.queries import load_principal
from inspections.audit import routes as audit
from inspections.caching import caches_lifespan
from inspections.checklists import pages as checklist_pages
from inspections.checklists import routes as checklists
from inspections.evidence import pages as evidence_pages
from inspections.evidence import routes as evidence
from inspections.evidence.lifespan import evidence_lifespan
from inspections.findings import (
    concern_pages,
    manager_pages,
    moderation,
    moderation_pages,
    open311,
    open_data,
    public_pages,
    public_profile,
    report_pages,
)
from inspections.findings import reports as finding_reports
from inspections.findings import routes as findings
from inspections.findings.reminders import reminders_lifespan
from inspections.inspector_app import routes as inspector_app
from inspections.notifications import pages as notification_pages
from inspections.notifications import routes as notifications
from inspections.notifications import webhook_pages
from inspections.notifications.lifespan import notifications_lifespan
from inspections.privacy import pages as privacy_pages
from inspections.privacy import routes as privacy
from inspections.privacy.retention import retention_lifespan
from inspections.scorecards import league_page
from inspections.scorecards import page as scorecard_page
from inspections.scorecards import routes as scorecards
from inspections.services import pages as service_pages
from inspections.services import routes as services
from inspections.submissions import routes as submissions
from inspections.visits import pages as visit_pages
from inspections.visits import routes as visits
from inspections.visits.bundle_memo import answer_from_memory
from inspections.web import home
from service.auth import TokenAuth, make_jwt_auth
from service.settings import Settings

MIGRATIONS = Path(__file__).parent / "migrations"
# Wrapped around the app, inside the request-id middleware: (app, app.state) -> app.
ASGI_WRAPPERS = [
    lambda app, state: answer_from_memory(app, lambda: state.get("bundle_memo")),
]
# Started after the core (pool, store) and stopped before it.
LIFESPANS = [
    caches_lifespan,
    evidence_lifespan,
    notifications_lifespan,
    reminders_lifespan,
    retention_lifespan,
]
# Requests that carry no browser form: the JSON API (a bearer token, or the cookie with this
# site's Origin, service/auth.py), Open311, the docs and probes. Everything else that posts
# is a form and needs its CSRF token.
CSRF_EXEMPT = ["^/v1/", "^/open311/", "^/schema", "^/health$", "^/ready$"]
PUBLIC_PATHS = [
    "^/schema",
    "^/health$",
    "^/ready$",
    "^/public/",
    "^/v1/public/",
    "^/open311/",
    "^/app(/|$)",
]


def make_auth(settings: Settings) -> TokenAuth:
    assert settings.jwt_secret
    return make_jwt_auth(
        settings.jwt_secret, settings.access_token_ttl_s, load_principal, PUBLIC_PATHS
    )


def route_handlers(settings: Settings) -> list[Any]:
    return [
        *accounts.routers(settings),
        audit.router,
        services.router,
        checklists.router,
        visits.router,
        visits.phone_router,
        submissions.router,
        *evidence.route_handlers,
        scorecards.router,
        notifications.router,
        findings.router,
        finding_reports.router,
        public_profile.router,
        open_data.router,
        open311.router,
        moderation.router,
        privacy.router,
        privacy.people_router,
        # Pages for browsers (HTML; session cookie from the sign-in page).
        *signin_page.routers(settings),
        scorecard_page.router,
        league_page.router,
        concern_pages.router,
        manager_pages.router,
        moderation_pages.router,
        public_pages.router,
        home.router,
        notification_pages.router,
        webhook_pages.router,
        service_pages.router,
        checklist_pages.router,
        people_pages.router,
        privacy_pages.router,
        org_settings_pages.router,
        privacy_notice.router,
        visit_pages.router,
        report_pages.router,
        evidence_pages.router,
        *inspector_app.route_handlers,  # the inspector's app (PWA), loads signed out too
    ]
