-- Photo processing queue: an uploaded photo is acknowledged once its original is stored;
-- its derivatives and full-decode check follow from this table (one row per photo still
-- 'processing'). Workers in every app process claim due rows with FOR UPDATE SKIP LOCKED
-- and push run_at forward as a lease: a process that dies mid-job leaves its row to be
-- claimed again once the lease runs out. A finished job deletes its row in the same
-- transaction that marks the evidence ready or rejected.

create table evidence_jobs (
    evidence_id uuid primary key references evidence (id) on delete cascade,
    run_at timestamptz not null default now(),  -- due from; while claimed, the lease's end
    attempts integer not null default 0,        -- claims so far
    claimed_by text,                            -- host/pid of the last claimer (for operators)
    last_error text,
    created_at timestamptz not null default now()
);
create index evidence_jobs_due_idx on evidence_jobs (run_at);

-- Wake the workers of every process when a photo is queued (see media/jobs.py).
create function evidence_jobs_notify() returns trigger language plpgsql as $$
begin
    perform pg_notify('coassess_evidence_jobs', '');
    return null;
end $$;
create trigger evidence_jobs_notify after insert on evidence_jobs
    for each statement execute function evidence_jobs_notify();
