-- A visit's door: its team's evidence and findings are taken until a coordinator closes
-- the visit (or cancels it, or the report goes to the service). The last member's final
-- submission also makes a visit 'submitted', so that status cannot say whether the door
-- is closed: closed_at can.
alter table visits add column closed_at timestamptz;
alter table visits add column closed_by uuid references users (id);

-- Visits a coordinator closed before this column existed (the close was audited).
update visits v set closed_at = a.at, closed_by = a.actor_id
  from (select distinct on (object_id) object_id, at, actor_id
          from audit_log
         where object_type = 'visit' and action = 'visit.submitted'
         order by object_id, at) a
 where v.status = 'submitted' and a.object_id = v.id::text;
