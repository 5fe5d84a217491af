-- Organisations, people, sign-in devices, invites, training records and the audit log.
-- Every row of every table belongs to one organisation.

create table organisations (
    id uuid primary key default gen_random_uuid(),
    name text not null check (length(name) between 1 and 200),
    settings jsonb not null default '{}',
    created_at timestamptz not null default now()
);

create table users (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    email text not null,
    display_name text not null default '',
    password_hash text not null,
    roles text[] not null check (
        cardinality(roles) > 0 and roles <@ array[
            'citizen_inspector', 'professional_inspector', 'coordinator',
            'scrutiny_member', 'service_manager']::text[]),
    active boolean not null default true,
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
-- Sign-in is by email alone, so an email identifies one person across organisations.
create unique index users_email_key on users (lower(email));
create index users_org_idx on users (organisation_id, created_at, id);

create table training_records (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    user_id uuid not null references users (id),
    kind text not null check (kind in ('course', 'safeguarding_check')),
    course text not null,
    completed_on date not null,
    expires_on date,
    recorded_by uuid references users (id),
    created_at timestamptz not null default now(),
    check (expires_on is null or expires_on >= completed_on)
);
create index training_records_user_idx on training_records (user_id);

create table devices (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    user_id uuid not null references users (id),
    name text not null,
    created_at timestamptz not null default now(),
    last_seen_at timestamptz not null default now(),
    revoked_at timestamptz,
    revoked_reason text
);
create index devices_user_idx on devices (user_id);

create table refresh_tokens (
    token_hash bytea primary key,
    device_id uuid not null references devices (id),
    issued_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz
);
create index refresh_tokens_device_idx on refresh_tokens (device_id);

create table invites (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    email text not null,
    roles text[] not null,
    code_hash bytea not null unique,
    created_by uuid references users (id),
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    accepted_at timestamptz,
    accepted_user_id uuid references users (id)
);

create table audit_log (
    id bigint generated always as identity primary key,
    organisation_id uuid not null references organisations (id),
    actor_id uuid references users (id),
    action text not null,
    object_type text not null,
    object_id text not null,
    summary jsonb not null default '{}',
    request_id text,
    at timestamptz not null default now()
);
create index audit_log_org_idx on audit_log (organisation_id, id desc);
create index audit_log_object_idx on audit_log (organisation_id, object_type, object_id);

-- The audit log is append-only: even the application's own role cannot rewrite history.
create function audit_log_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only';
end $$;
create trigger audit_log_no_update before update or delete on audit_log
    for each row execute function audit_log_append_only();
