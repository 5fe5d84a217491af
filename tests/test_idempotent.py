"""The phone's idempotent PUT, decided without a server (inspections/idempotent.py).

What a phone relies on: a retry of what it sent is answered as the first time and changes
nothing; a change needs the ETag it last saw; a stale or missing one never overwrites.
"""

from __future__ import annotations

import msgspec
from hypothesis import given
from hypothesis import strategies as st

from inspections import idempotent
from inspections.findings.operations import FINDING_WORDS, UPDATE_WORDS
from inspections.idempotent import Put, Stored, decide, etag_of, matches, refusal
from inspections.submissions.operations import WORDS as SUBMISSION_WORDS
from inspections.submissions.schemas import SubmissionPut

hashes = st.binary(min_size=32, max_size=32)
headers = st.none() | st.text(max_size=80)


def _stored(h: bytes, *, mine: bool = True, locked: bool = False) -> Stored:
    return Stored(body_hash=h, mine=mine, locked=locked)


@given(hashes, headers)
def test_a_new_id_is_created_whatever_if_match_says(h: bytes, if_match: str | None) -> None:
    assert decide(Put(h, if_match, None)) == "create"


@given(hashes, headers, st.booleans())
def test_the_same_body_again_is_a_replay_even_when_locked_and_without_if_match(
    h: bytes, if_match: str | None, locked: bool
) -> None:
    # A retry after a final submission, or after the report went out, is still a 200.
    assert decide(Put(h, if_match, _stored(h, locked=locked))) == "replay"


@given(hashes, hashes, headers, st.booleans())
def test_someone_elses_id_is_taken_and_never_replayed(
    stored: bytes, sent: bytes, if_match: str | None, locked: bool
) -> None:
    assert decide(Put(sent, if_match, _stored(stored, mine=False, locked=locked))) == "taken"


@given(hashes, hashes, headers)
def test_a_locked_object_refuses_every_change(
    stored: bytes, sent: bytes, if_match: str | None
) -> None:
    if stored != sent:
        assert decide(Put(sent, if_match, _stored(stored, locked=True))) == "locked"


@given(hashes, hashes)
def test_a_change_without_if_match_is_refused_with_428(stored: bytes, sent: bytes) -> None:
    if stored != sent:
        assert decide(Put(sent, None, _stored(stored))) == "precondition-required"


@given(hashes, hashes, st.lists(hashes, max_size=4), st.booleans())
def test_a_change_overwrites_only_when_if_match_names_the_stored_etag(
    stored: bytes, sent: bytes, others: list[bytes], include: bool
) -> None:
    if stored == sent:
        return
    tags = [etag_of(o) for o in others if o != stored]
    if include:
        tags.insert(len(tags) // 2, etag_of(stored))
    decision = decide(Put(sent, " , ".join(tags), _stored(stored)))
    assert decision == ("overwrite" if include else "stale")


def test_if_match_star_overwrites_whatever_is_stored() -> None:
    assert decide(Put(b"b" * 32, " * ", _stored(b"a" * 32))) == "overwrite"
    # Weak tags never match (If-Match compares strongly), nor does a bare hash.
    stored = b"a" * 32
    assert not matches("W/" + etag_of(stored), etag_of(stored))
    assert not matches(stored.hex()[:32], etag_of(stored))


def test_the_same_body_hashes_the_same_and_a_changed_one_does_not() -> None:
    body = SubmissionPut(state="draft", answers=[], device="Ann's phone")
    again = msgspec.json.decode(msgspec.json.encode(body), type=SubmissionPut)
    assert idempotent.body_hash(body) == idempotent.body_hash(again)
    changed = SubmissionPut(state="final", answers=[], device="Ann's phone")
    assert idempotent.body_hash(body) != idempotent.body_hash(changed)
    assert etag_of(idempotent.body_hash(body)).startswith('"')


def test_each_endpoint_keeps_its_problem_types() -> None:
    """The API contract: the types phones and tests already read."""
    assert refusal("taken", SUBMISSION_WORDS).kind == "submission-id-taken"
    assert refusal("locked", SUBMISSION_WORDS).kind == "submission-final"
    assert refusal("taken", FINDING_WORDS).kind == "finding-id-taken"
    assert refusal("locked", FINDING_WORDS).kind == "finding-locked"
    assert refusal("taken", UPDATE_WORDS).kind == "update-id-taken"
    assert refusal("locked", UPDATE_WORDS).kind == "update-id-taken"
    for words, stale in ((SUBMISSION_WORDS, "stale-draft"), (FINDING_WORDS, "stale")):
        required = refusal("precondition-required", words)
        assert (required.status, required.kind) == (428, "precondition-required")
        assert (refusal("stale", words).status, refusal("stale", words).kind) == (412, stale)
        assert all(refusal(d, words).detail for d in idempotent.REFUSALS)


def test_only_refusals_become_problems() -> None:
    for decision in ("create", "replay", "overwrite"):
        try:
            refusal(decision, FINDING_WORDS)  # type: ignore[arg-type]
        except ValueError:
            continue
        raise AssertionError(f"{decision} became a problem")


@given(hashes, headers)
def test_an_update_id_is_written_once(h: bytes, if_match: str | None) -> None:
    # Updates are history: a retry replays, anything else under the id is refused.
    assert decide(Put(h, if_match, _stored(h, locked=True))) == "replay"
    other = bytes(b ^ 1 for b in h)
    assert decide(Put(other, if_match, _stored(h, locked=True))) == "locked"
