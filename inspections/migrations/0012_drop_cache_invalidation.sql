-- Nothing listens for cache invalidations any more: who a caller is and a bundle's ETag are
-- read with each request (inspections/caching.py), so 0004's notifications go.
drop trigger users_invalidate on users;
drop trigger devices_invalidate on devices;
drop trigger visits_invalidate on visits;
drop trigger visit_members_invalidate on visit_members;
drop trigger services_invalidate on services;
drop function notify_invalidate();
