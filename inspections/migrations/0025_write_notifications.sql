-- Writes that change who a caller is or what a visit's bundle holds announce themselves on
-- commit (service/generation.py), whatever made them: another host, psql, a background
-- job. Each process then stops answering bundle 304s from memory until it reads again.
-- pg_notify is delivered on commit, never on rollback, and once per transaction.
create function notify_writes() returns trigger language plpgsql as $$
begin
    perform pg_notify('coassess_writes', '');
    return null;
end $$;

create trigger users_writes after insert or update or delete or truncate on users
    for each statement execute function notify_writes();
create trigger devices_writes after update of revoked_at, user_id or delete or truncate on devices
    for each statement execute function notify_writes();
create trigger visits_writes after update or delete or truncate on visits
    for each statement execute function notify_writes();
create trigger visit_members_writes after insert or update or delete or truncate on visit_members
    for each statement execute function notify_writes();
create trigger services_writes after update or delete or truncate on services
    for each statement execute function notify_writes();
