-- Invites go out by email (and can be sent again); forgotten passwords are reset by an
-- emailed single-use link; both kinds of request are rate limited here, in PostgreSQL, so
-- every app process shares one count.

-- A resend replaces the code (only its hash is kept, so the old one cannot be sent again).
alter table invites
    add column sent_count int not null default 0,
    add column last_sent_at timestamptz;
create index invites_org_idx on invites (organisation_id, created_at, id);

create table password_resets (
    id uuid primary key default gen_random_uuid(),
    organisation_id uuid not null references organisations (id),
    user_id uuid not null references users (id),
    token_hash bytea not null unique,   -- SHA-256 of the emailed token, never the token
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    used_at timestamptz                 -- used, or replaced by a newer request
);
create index password_resets_open_idx on password_resets (user_id) where used_at is null;

-- Fixed-window counters: one row per bucket (e.g. a hashed email address) and window.
create table rate_limits (
    bucket text not null,
    window_start timestamptz not null,
    hits int not null,
    primary key (bucket, window_start)
);
create index rate_limits_window_idx on rate_limits (window_start);
