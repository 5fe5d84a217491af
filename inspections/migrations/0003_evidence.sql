-- Photo evidence. Originals are kept byte for byte under a content-addressed key per
-- organisation; only derivatives (display, thumb), stripped of all metadata, are shown.

create table evidence (
    id uuid primary key,                      -- made by the phone (idempotency key)
    organisation_id uuid not null references organisations (id),
    visit_id uuid not null references visits (id),
    submission_id uuid,
    question_key text,
    uploaded_by uuid not null references users (id),
    caption text,
    status text not null check (status in ('uploading', 'processing', 'ready', 'rejected')),
    rejected_kind text,
    rejected_reason text,
    upload_key text,                          -- presigned uploads: where the phone puts bytes
    upload_expires_at timestamptz,
    sha256 bytea,
    size_bytes bigint,
    content_type text,                        -- detected from the bytes, never declared
    width integer,
    height integer,
    original_key text,
    display_key text,
    thumb_key text,
    -- What EXIF said, what the phone said, and what we concluded.
    exif_taken_at timestamptz,
    exif_lat double precision,
    exif_lon double precision,
    exif_altitude_m double precision,
    exif_h_error_m double precision,
    camera_make text,
    camera_model text,
    device_lat double precision,
    device_lon double precision,
    device_accuracy_m double precision,
    device_taken_at timestamptz,
    lat double precision,
    lon double precision,
    location_source text check (location_source in ('exif', 'device', 'none')),
    location_check text check (location_check in ('on_site', 'off_site', 'unverified')),
    distance_m double precision,
    taken_at timestamptz,
    time_check text check (time_check in ('in_window', 'outside_window', 'unknown')),
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    deleted_at timestamptz,
    deleted_by uuid references users (id),
    delete_reason text
);
create index evidence_visit_idx on evidence (visit_id, created_at);
-- The same bytes twice in a visit are one piece of evidence.
create unique index evidence_visit_sha_key on evidence (visit_id, sha256)
    where sha256 is not null and status <> 'rejected' and deleted_at is null;
create index evidence_stuck_idx on evidence (updated_at) where status in ('uploading', 'processing');
create index evidence_original_idx on evidence (original_key);
