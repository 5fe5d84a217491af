"""Bodies of the services slice (the places inspected)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated
from uuid import UUID

from msgspec import UNSET, Meta, UnsetType

from service.schema import Body, NonEmpty, Page

Kind = Annotated[
    str,
    Meta(pattern=r"^[a-z][a-z0-9_]{1,39}$", examples=["care_home", "hospital_ward", "gp_surgery"]),
]
Lat = Annotated[float, Meta(ge=-90, le=90, description="WGS84 latitude")]
Lon = Annotated[float, Meta(ge=-180, le=180, description="WGS84 longitude")]
Radius = Annotated[int, Meta(ge=10, le=10_000, description="geofence radius in metres")]
Address = Annotated[str, Meta(max_length=500)]
Managers = Annotated[list[UUID], Meta(max_length=50)]


class ServiceCreate(Body, kw_only=True):
    name: NonEmpty
    kind: Kind
    address: Address = ""
    lat: Lat
    lon: Lon
    geofence_m: Radius = 150
    manager_ids: Managers = []


class ServicePatch(Body, kw_only=True):
    name: NonEmpty | UnsetType = UNSET
    kind: Kind | UnsetType = UNSET
    address: Address | UnsetType = UNSET
    lat: Lat | UnsetType = UNSET
    lon: Lon | UnsetType = UNSET
    geofence_m: Radius | UnsetType = UNSET
    manager_ids: Managers | UnsetType = UNSET


# Where a service is and its geofence: all that a phone's offline bundle carries of it
# (inspections.visits.schemas.Bundle), and the first fields of the full Service.
class BundleService(Body, kw_only=True):
    id: UUID
    name: str
    kind: str
    address: str
    lat: float
    lon: float
    geofence_m: int


class Service(BundleService, kw_only=True):
    manager_ids: list[UUID]
    created_at: dt.datetime
    updated_at: dt.datetime


class ServicePage(Page[Service]):
    """A page of services."""
