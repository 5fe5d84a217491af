-- Per final submission and domain: the weighted sums a domain score is made of
-- (score = 100 * wp / wm). Written in the same transaction that finalises a submission,
-- so scorecards aggregate ~one row per submission and domain instead of every answer:
-- for 1M answers over 20k visits that is ~10x fewer rows, and no join to answers.
create table submission_scores (
    submission_id uuid not null references submissions (id) on delete cascade,
    domain text not null,
    organisation_id uuid not null,
    service_id uuid not null,
    visit_id uuid not null,
    user_id uuid not null,
    perspective text not null,
    visit_starts_at timestamptz not null,
    wp double precision not null,      -- sum of weight * points
    wm double precision not null,      -- sum of weight * max points (> 0)
    answers integer not null,          -- scored answers counted
    primary key (submission_id, domain),
    check (wm > 0)
);
-- One service's scorecard: its rows in a period.
create index submission_scores_service_idx
    on submission_scores (service_id, visit_starts_at) include (perspective, domain, wp, wm);
-- The league table: every service of the organisation in a period.
create index submission_scores_org_idx
    on submission_scores (organisation_id, visit_starts_at);
