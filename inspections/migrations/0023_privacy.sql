-- UK GDPR: retention, erasure by anonymisation, subject access (inspections/privacy/).

-- An erased person keeps their row (submissions, photos and findings still point at it, so
-- scorecards do not change) with nothing that identifies them; erased_at says when.
alter table users add column erased_at timestamptz;

-- The audit log stays append-only, except that the retention job may delete rows older
-- than the organisation's audit period: it sets coassess.retention in its transaction.
create or replace function audit_log_append_only() returns trigger language plpgsql as $$
begin
    if tg_op = 'DELETE' and current_setting('coassess.retention', true) = 'on' then
        return old;
    end if;
    raise exception 'audit_log is append-only';
end $$;

-- The log refers to people by id only: earlier rows that named an email or a display name
-- in their summary lose it (once, here), so erasing a person never needs a log edit.
alter table audit_log disable trigger audit_log_no_update;
update audit_log
   set summary = (summary - 'email' - 'display_name')
                 || case when summary ? 'display_name'
                         then '{"display_name_changed": true}'::jsonb else '{}'::jsonb end
 where summary ? 'email' or summary ? 'display_name';
alter table audit_log enable trigger audit_log_no_update;

-- The retention job finds old evidence by age.
create index evidence_org_created_idx on evidence (organisation_id, created_at);
