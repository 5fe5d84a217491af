-- Services (the places inspected), versioned checklists, visits with teams, submissions.

create table services (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    name text not null,
    kind text not null check (kind ~ '^[a-z][a-z0-9_]{1,39}$'),
    address text not null default '',
    lat double precision not null check (lat between -90 and 90),
    lon double precision not null check (lon between -180 and 180),
    geofence_m integer not null default 150 check (geofence_m between 10 and 10000),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index services_org_idx on services (organisation_id, kind, name, id);

create table service_managers (
    service_id uuid not null references services (id) on delete cascade,
    user_id uuid not null references users (id),
    organisation_id uuid not null references organisations (id),
    primary key (service_id, user_id)
);
create index service_managers_user_idx on service_managers (user_id);

create table checklists (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    title text not null,
    description text not null default '',
    service_kinds text[] not null default '{}',
    contributors jsonb not null default '[]',
    -- The editable draft; null when the latest published version has not been edited since.
    draft jsonb,
    latest_version integer not null default 0,
    retired_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index checklists_org_idx on checklists (organisation_id, created_at, id);

-- Published versions are immutable: visits pin one, and later versions never change it.
create table checklist_versions (
    checklist_id uuid not null references checklists (id),
    version integer not null check (version > 0),
    organisation_id uuid not null references organisations (id),
    title text not null,
    description text not null,
    service_kinds text[] not null,
    contributors jsonb not null,
    content jsonb not null,
    published_at timestamptz not null default now(),
    published_by uuid references users (id),
    primary key (checklist_id, version)
);
create function checklist_versions_immutable() returns trigger language plpgsql as $$
begin
    raise exception 'published checklist versions are immutable';
end $$;
create trigger checklist_versions_no_update before update on checklist_versions
    for each row execute function checklist_versions_immutable();

create table visits (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    service_id uuid not null references services (id),
    checklist_id uuid not null,
    checklist_version integer not null,
    starts_at timestamptz not null,
    ends_at timestamptz not null,
    announced boolean not null default true,
    status text not null default 'planned'
        check (status in ('planned', 'in_progress', 'submitted', 'cancelled')),
    cancelled_reason text,
    created_by uuid references users (id),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    foreign key (checklist_id, checklist_version) references checklist_versions (checklist_id, version),
    check (ends_at > starts_at)
);
create index visits_org_idx on visits (organisation_id, starts_at, id);
create index visits_service_idx on visits (service_id, starts_at);

create table visit_members (
    visit_id uuid not null references visits (id) on delete cascade,
    user_id uuid not null references users (id),
    organisation_id uuid not null references organisations (id),
    perspective text not null check (perspective in ('citizen', 'professional')),
    is_lead boolean not null default false,
    primary key (visit_id, user_id)
);
create index visit_members_user_idx on visit_members (user_id, visit_id);

-- One inspector's answers at one visit. The id is made by the phone.
create table submissions (
    id uuid primary key,
    organisation_id uuid not null references organisations (id),
    visit_id uuid not null references visits (id),
    user_id uuid not null references users (id),
    perspective text not null check (perspective in ('citizen', 'professional')),
    state text not null check (state in ('draft', 'final')),
    body_hash bytea not null,
    device text,
    client_started_at timestamptz,
    client_updated_at timestamptz,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finalised_at timestamptz,
    -- One submission per inspector per visit, enforced here (not by check-then-insert).
    unique (visit_id, user_id)
);

create table answers (
    submission_id uuid not null references submissions (id) on delete cascade,
    position integer not null,
    question_key text not null,
    organisation_id uuid not null,
    domain text not null,
    value jsonb,
    na boolean not null default false,
    comment text,
    -- Scored types only; null points and max for N/A, unanswered or unscored answers.
    points real,
    max_points real,
    weight real not null,
    primary key (submission_id, question_key)
);
