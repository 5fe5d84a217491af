"""Where evidence lives in the bucket. Everything is under the organisation's prefix."""

from __future__ import annotations

from uuid import UUID


def org_prefix(organisation_id: UUID) -> str:
    return f"orgs/{organisation_id}/"


def original_key(organisation_id: UUID, sha256_hex: str) -> str:
    # Content-addressed: the same bytes are stored once per organisation, byte for byte.
    return f"{org_prefix(organisation_id)}originals/{sha256_hex[:2]}/{sha256_hex}"


def derivative_key(organisation_id: UUID, evidence_id: UUID, name: str) -> str:
    return f"{org_prefix(organisation_id)}derivatives/{evidence_id}/{name}.jpg"


def incoming_key(organisation_id: UUID, evidence_id: UUID) -> str:
    # Where a presigned upload lands before the server checks it; the server chose it.
    return f"{org_prefix(organisation_id)}incoming/{evidence_id}"
