"""Where a photo was taken, role by role: exact coordinates only for coordinators and the
inspector who took it; everyone else the check and a distance rounded to 100 m; the public
nothing of the photo's position (Open311 places a finding at the service)."""

from __future__ import annotations

from typing import Any

from tests.helpers import Api, assert_problem
from tests.scenes import CALL_BELLS, GPS_PHOTO, PHOTO_LAT, PHOTO_LON, Findings, Photos

# The service stands about 5 km from where the photo was taken (3.3 km north, 3.6 km east).
SERVICE_LAT, SERVICE_LON = PHOTO_LAT + 0.03, PHOTO_LON + 0.045
# The photo's position to three decimals (about 100 m): none of this may reach the public.
PHOTO_MARKS = (f"{PHOTO_LAT:.3f}", f"{PHOTO_LON:.3f}")


def _exact(loc: dict[str, Any]) -> bool:
    return loc["lat"] is not None and abs(loc["lat"] - PHOTO_LAT) < 1e-6


async def test_who_sees_where_a_photo_was_taken(api: Api) -> None:
    f = await Findings(api).build()
    r = await api.client.patch(
        f"/v1/services/{f.s.service['id']}",
        headers=f.coord,
        json={"lat": SERVICE_LAT, "lon": SERVICE_LON, "geofence_m": 150},
    )
    assert r.status_code == 200, r.text
    photos = Photos(api, f.s, f.visit)
    r = await photos.upload(f.ann, GPS_PHOTO.read_bytes(), lat=51.5, lon=-0.12, accuracy_m=8)
    assert r.status_code == 202, r.text  # stored; the location is checked before the answer
    ev = r.json()
    assert (await photos.settled(f.ann, r))["status"] == "ready"  # before it is published
    # The uploader, in the upload's answer: exact, theirs.
    assert _exact(ev["location"]) and ev["location"]["check"] == "off_site"
    exact_distance = ev["location"]["distance_m"]
    assert 4_500 < exact_distance < 5_500

    url = f"/v1/evidence/{ev['id']}"
    seen = {}
    for role, who in (
        ("coordinator", f.coord),
        ("uploader", f.ann),
        ("team member", f.bob),
        ("professional on the team", f.pro),
        ("scrutiny member", f.scrutiny),
    ):
        r = await api.client.get(url, headers=who)
        assert r.status_code == 200, (role, r.text)
        seen[role] = r.json()["location"]
    for role in ("coordinator", "uploader"):
        assert _exact(seen[role]) and seen[role]["accuracy_m"] is None  # EXIF gave none
        assert seen[role]["distance_m"] == exact_distance
    for role in ("team member", "professional on the team", "scrutiny member"):
        loc = seen[role]
        assert loc["lat"] is None and loc["lon"] is None and loc["accuracy_m"] is None, role
        assert loc["check"] == "off_site" and loc["source"] == "exif"
        assert loc["distance_m"] % 100 == 0 and abs(loc["distance_m"] - exact_distance) <= 50
    # Service managers do not read the team's evidence at all.
    assert_problem(await api.client.get(url, headers=f.manager), 403)

    # The visit's evidence list follows the same rule.
    listing = f"/v1/visits/{f.visit['id']}/evidence"
    for who, exact in ((f.coord, True), (f.ann, True), (f.bob, False)):
        items = (await api.client.get(listing, headers=who)).json()
        assert [_exact(e["location"]) for e in items] == [exact]

    # Published: the public sees the photo's derivative, never where it was taken; Open311
    # places the finding at the service.
    bells = (await f.raise_(f.ann, **{**CALL_BELLS, "evidence_ids": [ev["id"]]})).json()
    report = await f.published_report()
    anon = api.client
    anon.headers.pop("Authorization", None)
    public = [
        await anon.get(f"/v1/public/reports/{report['id']}"),
        await anon.get("/v1/public/reports"),
        await anon.get(f"/public/reports/{report['id']}"),
        await anon.get("/open311/v2/requests.json"),
        await anon.get(f"/open311/v2/requests/{bells['id']}.json"),
    ]
    for r in public:
        assert r.status_code == 200, r.text
        for mark in PHOTO_MARKS:
            assert mark not in r.text, (str(r.url), mark)
    request = (await anon.get(f"/open311/v2/requests/{bells['id']}.json")).json()
    request = request[0] if isinstance(request, list) else request
    assert request["media_url"]
    assert (request["lat"], request["long"]) == (SERVICE_LAT, SERVICE_LON)
