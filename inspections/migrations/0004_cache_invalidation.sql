-- Announce changes that in-process caches depend on (service/invalidation.py).
-- pg_notify is delivered on commit, and not at all on rollback.

create function notify_invalidate() returns trigger language plpgsql as $$
declare
    rec record := coalesce(new, old);
begin
    if tg_table_name = 'users' then
        perform pg_notify('coassess_invalidate', 'user:' || rec.id);
    elsif tg_table_name = 'devices' then
        perform pg_notify('coassess_invalidate', 'user:' || rec.user_id);
    elsif tg_table_name = 'visits' then
        perform pg_notify('coassess_invalidate', 'visit:' || rec.id);
    elsif tg_table_name = 'visit_members' then
        perform pg_notify('coassess_invalidate', 'visit:' || rec.visit_id);
    elsif tg_table_name = 'services' then
        perform pg_notify('coassess_invalidate', 'service:' || rec.id);
    end if;
    return null;
end $$;

create trigger users_invalidate after update or delete on users
    for each row execute function notify_invalidate();
-- Only a revocation matters to the caches; last_seen_at changes on every refresh.
create trigger devices_invalidate after update of revoked_at on devices
    for each row execute function notify_invalidate();
create trigger visits_invalidate after update or delete on visits
    for each row execute function notify_invalidate();
create trigger visit_members_invalidate after insert or update or delete on visit_members
    for each row execute function notify_invalidate();
create trigger services_invalidate after update or delete on services
    for each row execute function notify_invalidate();
