-- A coordinator may override a scorecard's overall band, only with a recorded reason.
create table scorecard_overrides (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    service_id uuid not null references services (id),
    period_from timestamptz not null,
    period_to timestamptz not null,
    band text not null
        check (band in ('inadequate', 'requires_improvement', 'good', 'outstanding')),
    reason text not null check (length(reason) >= 10),
    created_by uuid not null references users (id),
    created_at timestamptz not null default now()
);
create index scorecard_overrides_idx
    on scorecard_overrides (service_id, period_from, period_to, created_at desc);
