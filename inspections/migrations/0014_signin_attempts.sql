-- Sign-in attempts are counted in rate_limits too (per account and client address, and per
-- account), with the password reset requests. A window now opens at a bucket's first hit
-- instead of on the clock's minute or hour: N hits are allowed in any window a first hit
-- opens (never 2N across a boundary), and Retry-After says exactly when it ends. So one row
-- per bucket, holding its window's start and length.
delete from rate_limits r
 using rate_limits newer
 where newer.bucket = r.bucket and newer.window_start > r.window_start;
alter table rate_limits
    drop constraint rate_limits_pkey,
    add primary key (bucket),
    add column window_s int not null default 3600;
