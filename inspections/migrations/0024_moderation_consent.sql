-- What becomes public after publication waits for a coordinator (issue 16), and consent.

-- Notes, decline reasons and photos (finding_updates) and action plans (finding_actions)
-- written once the finding's report is published are 'pending' until a coordinator
-- approves or rejects them; everything earlier was reviewed with the report ('approved').
alter table finding_updates
    add column moderation text not null default 'approved'
        check (moderation in ('pending', 'approved', 'rejected')),
    add column moderated_by uuid references users (id),
    add column moderated_at timestamptz,
    add column moderation_reason text;
alter table finding_actions
    add column moderation text not null default 'approved'
        check (moderation in ('pending', 'approved', 'rejected')),
    add column moderated_by uuid references users (id),
    add column moderated_at timestamptz,
    add column moderation_reason text,
    add column created_at timestamptz not null default now();

-- Set here rather than in each writer, so no path can publish free text unreviewed. A
-- history line with no text and no photo (a bare status change, the publication itself)
-- carries nothing to review.
create function moderate_after_publication() returns trigger language plpgsql as $$
begin
    if exists (select 1 from findings f
                 join visit_reports r on r.visit_id = f.visit_id and r.status = 'published'
                where f.id = new.finding_id) then
        new.moderation := 'pending';
    end if;
    return new;
end $$;
create trigger finding_updates_moderation before insert on finding_updates
    for each row
    when (new.kind <> 'published' and (new.note <> '' or new.evidence_ids <> '{}'))
    execute function moderate_after_publication();
create trigger finding_actions_moderation before insert on finding_actions
    for each row execute function moderate_after_publication();

create index finding_updates_pending_idx on finding_updates (organisation_id, created_at)
    where moderation = 'pending';
create index finding_actions_pending_idx on finding_actions (organisation_id, created_at)
    where moderation = 'pending';

-- A photo showing a person is never public unless a coordinator recorded why it may be.
alter table evidence
    add column shows_person boolean not null default false,
    add column public_reason text;

-- Which privacy notice each person accepted, and when.
alter table users
    add column privacy_notice_version text,
    add column privacy_accepted_at timestamptz;
