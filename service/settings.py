"""All settings, read once from environment variables (documented in the README)."""

from __future__ import annotations

import os
from pathlib import Path

import msgspec

ROOT = Path(__file__).resolve().parent.parent


class Settings(msgspec.Struct, kw_only=True, frozen=True):
    # PostgreSQL DSN. Unset: `python -m service serve` starts an embedded cluster in DATA_DIR.
    database_url: str | None = None
    db_pool_min: int = 2
    db_pool_max: int = 10
    # S3-compatible store. Unset endpoint: serve starts SeaweedFS in DATA_DIR.
    s3_endpoint_url: str | None = None
    s3_bucket: str = "coassess"
    s3_region: str = "us-east-1"
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    # Signing key for access tokens; serve generates one into DATA_DIR when unset.
    jwt_secret: str | None = None
    access_token_ttl_s: int = 900
    refresh_token_ttl_days: int = 60
    # A refresh token presented again this soon after its use (a phone retrying after a lost
    # answer, or two requests racing) gets the same successor instead of signing out.
    refresh_reuse_grace_s: int = 30
    invite_ttl_days: int = 14
    # Forgotten passwords: how long an emailed reset link works, and how many requests an
    # hour one email address and one client address may make (kept in PostgreSQL).
    password_reset_ttl_min: int = 30
    password_reset_per_email_per_hour: int = 3
    password_reset_per_address_per_hour: int = 10
    # Request bodies above this are refused with 413 (photo routes set their own cap).
    max_body_bytes: int = 1_000_000
    # Sign-in attempts, counted in PostgreSQL (every process shares them): per account and
    # client address a minute, and per account from any address an hour (distributed guessing).
    signin_rate_per_minute: int = 10
    signin_per_account_per_hour: int = 100
    # Reverse proxies whose X-Forwarded-For is believed (comma-separated addresses or CIDRs);
    # the client is the right-most hop not in this list. Empty: the TCP peer is the client.
    trusted_proxies: str = ""
    # argon2id cost; the defaults are argon2-cffi's RFC 9106 "low memory" profile.
    argon2_time_cost: int = 3
    argon2_memory_kib: int = 65536
    # Photo evidence.
    max_photo_bytes: int = 25_000_000
    max_photo_pixels: int = 50_000_000  # decompression bombs are refused above this
    image_workers: int = 2  # processes decoding photos (per app process), fed by the queue
    # Photos decoding at once on this host, all app processes together; 0: one fewer than
    # the CPUs (at least 1), so that answering requests always has a CPU.
    photo_decodes_per_host: int = 0
    # Uploads are acknowledged (202) once the original is stored; the processing queue
    # (inspections/evidence/jobs.py) does the rest. Above photo_queue_max queued photos,
    # new uploads get 503 + Retry-After. A claimed job is claimed again after its lease (a
    # crashed process).
    photo_queue_max: int = 300
    photo_job_interval_s: float = 5  # in-app worker: woken by each upload, polls this often
    # Uploads first: while this process receives uploads its workers start no new photo,
    # for at most this long each time (so a steady stream of uploads cannot stall the queue).
    photo_defer_max_s: float = 2
    photo_job_lease_s: int = 120
    photo_job_max_attempts: int = 5  # then the photo is marked rejected (kept, listed)
    evidence_url_ttl_s: int = 300  # presigned GETs of derivatives and originals
    upload_url_ttl_s: int = 3600  # presigned POSTs for direct-to-store uploads
    photo_time_tolerance_min: int = 60  # a photo this long before/after the visit is in time
    max_location_accuracy_m: float = 500  # a coarser phone fix cannot prove "on site"
    site_timezone: str = "Europe/London"  # reads EXIF times that carry no UTC offset
    sweep_interval_s: int = 3600  # 0 disables the in-app orphan sweeper
    sweep_grace_s: int = 3600  # objects and stuck uploads younger than this are left alone
    # Photos being received are written here (created 0700); unset: <tempdir>/coassess-uploads.
    # One folder per machine: what a dead process left is removed at start and by the sweep.
    upload_tmp_dir: str | None = None
    # Notifications. Email goes through this SMTP server; unset host: emails wait in the
    # outbox (nothing is lost) until one is configured.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_username: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    mail_from: str = "Co-assessment <no-reply@localhost>"
    deliver_interval_s: float = 5.0  # how often the in-app worker looks; 0 disables it
    deliver_max_attempts: int = 10  # then the notification is marked failed (and kept)
    webhook_timeout_s: float = 10.0
    # Webhooks to private, loopback or link-local addresses are refused unless this is set
    # (local development, tests): they would let a URL reach what only our servers reach.
    webhook_allow_private: bool = False
    # Webhook signing secrets are stored encrypted with this key (base64 of 32 bytes);
    # unset: derived from jwt_secret. After a rotation the previous secret still signs
    # deliveries for webhook_secret_overlap_s seconds, beside the new one.
    webhook_secret_key: str | None = None
    webhook_secret_overlap_s: int = 86400
    reminder_interval_s: float = 3600  # scan for responses due soon or overdue; 0 disables
    retention_interval_s: float = 86400  # the retention job (inspections/privacy); 0 disables
    # The privacy notice people accept when they join (/privacy shows it): change it with
    # the notice's text (inspections/accounts/templates/accounts/privacy_notice.html).
    privacy_notice_version: str = "2026-11-30"
    # Where people reach this service: links in emails, public report and photo URLs.
    public_base_url: str | None = None
    host: str = "127.0.0.1"
    port: int = 8000
    workers: int = 1
    log_level: str = "INFO"
    data_dir: str = str(ROOT / ".data")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Each field from the upper-cased environment variable of its name."""
        env = dict(os.environ if env is None else env)
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = env.get(name.upper())
            if value not in (None, ""):
                raw[name] = value
        raw.update(overrides)
        return msgspec.convert(raw, cls, strict=False)
