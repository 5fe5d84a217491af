-- Findings, visit reports, responses and verification; safeguarding leads; the
-- notifications outbox and the webhooks organisations register.

-- A safeguarding lead is told about safeguarding findings and records their handling.
alter table users drop constraint users_roles_check;
alter table users add constraint users_roles_check check (
    cardinality(roles) > 0 and roles <@ array[
        'citizen_inspector', 'professional_inspector', 'coordinator',
        'scrutiny_member', 'service_manager', 'safeguarding_lead']::text[]);

-- One report per visit: draft -> factual_check (sent to the service) -> published.
create table visit_reports (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    visit_id uuid not null unique references visits (id),
    service_id uuid not null references services (id),
    status text not null default 'draft'
        check (status in ('draft', 'factual_check', 'published')),
    summary text not null default '',
    created_by uuid not null references users (id),
    sent_at timestamptz,
    published_at timestamptz,
    published_on date,          -- the publication date the due dates count from
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index visit_reports_service_idx on visit_reports (service_id, status);
create index visit_reports_published_idx on visit_reports (organisation_id, published_at, id)
    where status = 'published';

-- The provider's factual-accuracy comments while the report is with them.
create table report_comments (
    id uuid primary key,        -- the client's, so a retry does not comment twice
    organisation_id uuid not null references organisations (id),
    report_id uuid not null references visit_reports (id),
    finding_id uuid,
    author_id uuid not null references users (id),
    comment text not null,
    created_at timestamptz not null default now()
);
create index report_comments_report_idx on report_comments (report_id, created_at);

-- A finding is what the team saw; its recommendation is what the service must answer.
-- Status: draft until its report is published; then open (a recommendation awaiting a
-- response) -> responded -> in_progress -> done_by_service -> verified, or declined;
-- noted for published findings without a recommendation. Safeguarding findings never
-- enter a report: raised -> acknowledged -> referred -> closed.
-- Overdue is never stored: it is due_on < today while the status is open.
create table findings (
    id uuid primary key,        -- the phone's
    organisation_id uuid not null references organisations (id),
    visit_id uuid not null references visits (id),
    service_id uuid not null references services (id),
    raised_by uuid not null references users (id),
    raised_as text not null check (raised_as in ('citizen', 'professional', 'coordinator')),
    title text not null,
    description text not null default '',
    domain text,
    question_keys text[] not null default '{}',
    severity text not null
        check (severity in ('positive', 'minor', 'major', 'safeguarding')),
    evidence_ids uuid[] not null default '{}',
    recommendation text,
    in_report boolean not null default true,   -- the coordinator's review
    status text not null default 'draft' check (status in (
        'draft', 'open', 'responded', 'in_progress', 'done_by_service', 'verified',
        'declined', 'noted', 'raised', 'acknowledged', 'referred', 'closed')),
    check ((severity = 'safeguarding') = (status in ('raised', 'acknowledged', 'referred', 'closed'))),
    due_on date,
    responded_at timestamptz,
    decline_reason text,
    safeguarding_reference text,
    body_hash bytea not null,   -- of the raiser's last PUT: a replay is recognised
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index findings_visit_idx on findings (visit_id);
create index findings_service_idx on findings (service_id, status);
create index findings_org_idx on findings (organisation_id, updated_at, id);
-- The reminder scan reads only recommendations still awaiting a response.
create index findings_open_due_idx on findings (due_on) where status = 'open';

-- An accepted recommendation's action plan.
create table finding_actions (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    finding_id uuid not null references findings (id),
    position int not null,
    action text not null,
    owner text not null,
    target_date date not null,
    done_at timestamptz,
    unique (finding_id, position)
);

-- Every state change and progress note: the finding's history (an Open311-style update
-- log). actor_role is what the public sees; actor_id only the organisation.
create table finding_updates (
    id uuid primary key,        -- the client's (or the server's for its own changes)
    organisation_id uuid not null references organisations (id),
    finding_id uuid not null references findings (id),
    kind text not null,
    from_status text,
    to_status text not null,
    actor_id uuid references users (id),
    actor_role text not null,
    note text not null default '',
    evidence_ids uuid[] not null default '{}',
    body_hash bytea,            -- of the client's PUT: a replay is recognised
    created_at timestamptz not null default now()
);
create index finding_updates_finding_idx on finding_updates (finding_id, created_at);

-- Webhooks an organisation registers; payloads are signed with the secret (HMAC-SHA256).
create table webhooks (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    url text not null,
    secret text not null,
    events text[] not null,
    active boolean not null default true,
    created_by uuid not null references users (id),
    created_at timestamptz not null default now()
);
create index webhooks_org_idx on webhooks (organisation_id) where active;

-- Notifications: written in the transaction of the change they announce, delivered after
-- it commits by a worker (FOR UPDATE SKIP LOCKED). One row per event and recipient; the
-- unique key makes a repeated enqueue of the same event a no-op.
create table outbox (
    id bigserial primary key,
    organisation_id uuid not null references organisations (id),
    event text not null,
    event_key text not null,     -- e.g. 'report.published:<report id>'
    channel text not null check (channel in ('email', 'webhook')),
    recipient text not null,     -- an email address, or a webhook id
    subject text not null default '',
    body text not null default '',   -- the email's text
    payload jsonb not null,          -- the webhook's JSON (and the email's facts)
    created_at timestamptz not null default now(),
    attempts int not null default 0,
    next_attempt_at timestamptz not null default now(),
    delivered_at timestamptz,
    failed_at timestamptz,       -- gave up after the last attempt; kept, never deleted
    last_error text,
    unique (event_key, channel, recipient)
);
create index outbox_pending_idx on outbox (next_attempt_at)
    where delivered_at is null and failed_at is null;

-- Wake the delivery workers when a committed transaction added to the outbox.
create function outbox_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('coassess_outbox', '');
    return null;
end $$;
create trigger outbox_notify after insert on outbox
    for each statement execute function outbox_notify();
