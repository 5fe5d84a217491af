"""The API docs: they work with no network beyond the app, and their examples are true.

The docs UI (/schema) is a vendored Swagger UI: a real Chromium opens it with every request
to anywhere but the app aborted. Each request example the OpenAPI document gives for a
phone call is sent, as documented, to the real endpoint and must succeed.
"""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar.testing import AsyncTestClient

from service.docs import CSP
from tests.conftest import CHROMIUM_FLAGS, PHOTOS, ROOT
from tests.helpers import Api

GPS_PHOTO = PHOTOS / "gps" / "DSCN0010.jpg"
QUESTION_TYPES = ("rating", "pass_fail", "yes_no", "choice", "number", "text")

# A deadline against a hang on a busy machine; each wait ends as soon as its condition holds.
WAIT_MS = 60_000


async def test_docs_page_loads_only_our_own_files_under_a_strict_csp(
    client: AsyncTestClient,
) -> None:
    r = await client.get("/schema")
    assert r.status_code == 200 and r.headers["content-security-policy"] == CSP
    assert "script-src 'self';" in CSP and "connect-src 'self'" in CSP
    assert "http://" not in r.text and "https://" not in r.text  # no CDN, no favicon elsewhere
    for src in ("/schema/assets/docs.js", "/schema/assets/vendor/swagger-ui-dist-5.35.0/"):
        assert src in r.text
    js = await client.get("/schema/assets/vendor/swagger-ui-dist-5.35.0/swagger-ui-bundle.js")
    assert js.status_code == 200 and "SwaggerUIBundle" in js.text
    # The vendored copy ships with its licence.
    assert (ROOT / "service/static/vendor/swagger-ui-dist-5.35.0/LICENSE").is_file()


async def test_docs_render_in_chromium_with_everything_off_origin_blocked(
    base_url: str, chromium: str
) -> None:
    from playwright.async_api import Route, async_playwright, expect

    left_origin: list[str] = []
    problems: list[str] = []

    async def only_the_app(route: Route) -> None:
        if route.request.url.startswith(base_url + "/"):
            await route.continue_()
        else:
            left_origin.append(route.request.url)
            await route.abort()

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            page = await browser.new_page(viewport={"width": 1280, "height": 900})
            await page.route("**/*", only_the_app)
            page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: problems.append(str(e)))
            response = await page.goto(base_url + "/schema")
            assert response is not None and response.status == 200
            # Waits for the condition (the UI rendered from the spec), not for a time.
            await expect(page.get_by_role("heading", level=1)).to_contain_text(
                "Co-assessment API", timeout=WAIT_MS
            )
            put = page.get_by_role(
                "button", name="PUT /v1/visits/{visit_id}/submissions/{submission_id} Save"
            )
            await expect(put).to_be_visible(timeout=WAIT_MS)
            # Open the submission call: its documented example is shown.
            await put.click()
            await expect(page.get_by_text("dignity_privacy").first).to_be_visible()
        finally:
            await browser.close()
    assert left_origin == []
    assert [p for p in problems if "Content Security Policy" in p] == []


# --------------------------------------------------------------------------- examples


class PhoneScene:
    """An organisation as the CLI makes it (starter checklists), a care home, and a visit on
    the starter care-home checklist whose team is two cleared citizens and a professional."""

    async def build(self, api: Api) -> PhoneScene:
        from inspections.checklists.starter import install_starters
        from tests.scenes import WINDOW

        self.api = api
        org = await api.org()
        care_home, _ = await install_starters(api.conn, uuid.UUID(org))
        coord = await api.login(await api.user(org, "coordinator"))
        service = await api.client.post(
            "/v1/services",
            headers=coord,
            json={"name": "Elm House", "kind": "care_home", "lat": 51.5074, "lon": -0.1278},
        )
        assert service.status_code == 201, service.text
        self.ann = await api.cleared_citizen(org, name="Ann")
        bob = await api.cleared_citizen(org, name="Bob")
        pro = await api.user(org, "professional_inspector", name="Dr Pat")
        r = await api.client.post(
            "/v1/visits",
            headers=coord,
            json={
                "service_id": service.json()["id"],
                "checklist_id": str(care_home),
                **WINDOW,
                "team": [
                    {"user_id": self.ann["id"], "perspective": "citizen"},
                    {"user_id": bob["id"], "perspective": "citizen"},
                    {"user_id": pro["id"], "perspective": "professional"},
                ],
            },
        )
        assert r.status_code == 201, r.text
        self.visit = r.json()
        self.phone = await api.login(self.ann)
        return self


def request_examples(spec: dict[str, Any], path: str, method: str, media: str) -> list[Any]:
    """The request body examples the OpenAPI document gives for one call."""
    content = spec["paths"][path][method]["requestBody"]["content"][media]
    # As OpenAPI's media type examples (named), or JSON Schema's (a list, OpenAPI 3.1).
    examples = [e["value"] for e in (content.get("examples") or {}).values()]
    examples += content["schema"].get("examples", [])
    assert examples, f"{method.upper()} {path} documents no request example"
    return examples


def same_shape(documented: Any, real: Any, where: str = "$") -> None:
    """The documented example has the real answer's fields, at every level."""
    if isinstance(real, dict):
        assert isinstance(documented, dict), where
        assert set(documented) == set(real), f"{where}: {set(documented) ^ set(real)}"
        for key in real:
            same_shape(documented[key], real[key], f"{where}.{key}")
    elif isinstance(real, list) and real and documented:
        for i, item in enumerate(documented):
            # Items of one list may differ by type (questions): compare with a real one
            # of the same type (this section of the real bundle may have none).
            typed = isinstance(item, dict) and "type" in item
            like = [r for r in real if not typed or r.get("type") == item["type"]]
            if like:
                same_shape(item, like[0], f"{where}[{i}]")


async def test_every_documented_phone_example_works_against_the_real_endpoints(api: Api) -> None:
    spec = (await api.client.get("/schema/openapi.json")).json()
    s = await PhoneScene().build(api)
    c, visit_id = api.client, s.visit["id"]

    # The bundle: the documented answer has the real one's shape, and 304 works as told.
    path = "/v1/visits/{visit_id}/bundle"
    documented = spec["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]
    [bundle_example] = [e["value"] for e in documented["examples"].values()]
    r = await c.get(f"/v1/visits/{visit_id}/bundle", headers=s.phone)
    assert r.status_code == 200, r.text
    real = r.json()
    same_shape(bundle_example, real)
    real_questions = [
        q for sec in real["checklist"]["content"]["sections"] for q in sec["questions"]
    ]
    for section in bundle_example["checklist"]["content"]["sections"]:
        for q in section["questions"]:  # each against a real question of its type
            same_shape(q, next(r for r in real_questions if r["type"] == q["type"]), q["key"])
    again = await c.get(
        f"/v1/visits/{visit_id}/bundle", headers={**s.phone, "If-None-Match": r.headers["etag"]}
    )
    assert again.status_code == 304

    # The submission: one answer of every question type, as documented.
    path = "/v1/visits/{visit_id}/submissions/{submission_id}"
    for body in request_examples(spec, path, "put", "application/json"):
        r = await c.put(
            f"/v1/visits/{visit_id}/submissions/{uuid.uuid4()}", json=body, headers=s.phone
        )
        assert r.status_code in (200, 201), r.text
        assert len(r.json()["answers"]) == len(body["answers"])
        questions = [
            q for sec in real["checklist"]["content"]["sections"] for q in sec["questions"]
        ]
        type_of = {q["key"]: q["type"] for q in questions}
        answered = {type_of[a["question_key"]] for a in body["answers"]}
        assert answered == {q["type"] for q in questions} == set(QUESTION_TYPES)

    # A photo: the documented metadata part (the ids are the visit's and a new one), a real file.
    for example in request_examples(spec, "/v1/evidence", "post", "multipart/form-data"):
        meta = {**example["metadata"], "evidence_id": str(uuid.uuid4()), "visit_id": visit_id}
        r = await c.post(
            "/v1/evidence",
            headers=s.phone,
            files={
                "metadata": (None, msgspec.json.encode(meta), "application/json"),
                "file": ("photo.jpg", GPS_PHOTO.read_bytes(), "image/jpeg"),
            },
        )
        assert r.status_code in (201, 202), r.text  # 202: taken, still being processed
        assert r.json()["caption"] == example["metadata"]["caption"]

    # A finding, as documented.
    path = "/v1/visits/{visit_id}/findings/{finding_id}"
    for body in request_examples(spec, path, "put", "application/json"):
        r = await c.put(
            f"/v1/visits/{visit_id}/findings/{uuid.uuid4()}", json=body, headers=s.phone
        )
        assert r.status_code in (200, 201), r.text
