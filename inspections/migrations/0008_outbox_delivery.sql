-- GET /v1/notifications lists an organisation's outbox newest first; rows are kept for
-- good (delivered and failed alike), so that list must not scan the whole table.
create index outbox_org_idx on outbox (organisation_id, id);
