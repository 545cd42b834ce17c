"""Hostile batches to the sync API (issue 8, Security 5), on both databases: junk JSON, too many
operations, unknown kinds, bad UUIDs and timestamps, spoiled fields. No 5xx; one result per
operation; a refused batch, or one with nothing applied, leaves every stored row as it was."""
from __future__ import annotations

import json
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from hostile_forms import (HOSTILE_TEXT, MARKUP, POLICE, assert_no_raw_markup, assert_unchanged,
                           display_pages, snapshot)
from hostile_forms import scene  # noqa: F401 (a fixture)


# --- the sync API ----------------------------------------------------------------------------

SHORT_HOSTILE = [text for text in HOSTILE_TEXT if len(text) < 300]
JUNK = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(SHORT_HOSTILE)
    | st.text(st.characters(exclude_categories=["Cs"]), max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=10)
INSTANTS = st.sampled_from(["2026-03-02T19:40:00+00:00", "2026-03-02T13:30", "2026-02-30T10:00:00Z",
                            "99999-01-01T00:00:00Z", "", "yesterday", "2026-03-02T19:40:00+25:00"])
UUIDS = st.one_of(st.uuids().map(str), st.sampled_from(
    ["not-a-uuid", "", "00000000-0000-0000-0000-000000000000", "{" + "1" * 32 + "}",
     "3f2b8e2a-1c4d-4e5f-8a9b-0c1d2e3f4a5b"]))  # the last one on purpose, again and again


def _valid_op(episode_id: int):
    """A step entry or a contact the server would store, its free text carrying markup."""
    step = st.builds(lambda key, text, op_uuid: {
        "uuid": op_uuid, "kind": "step_entry", "episode_id": episode_id, "step_key": key,
        "recorded_at": "2026-03-02T19:40:00+00:00", "policy_version": "missouri-2023",
        "fields": {"outcome": "done", "done_at": "2026-03-02T13:30", "reason": "",
                   "evidence": {"case_number": text, "method": "Phone", "reported_by": "Caseworker",
                                **({} if key == "report_ncmec" else POLICE)}}},
        st.sampled_from(["report_ncmec", "report_law_enforcement"]), st.sampled_from(MARKUP), UUIDS)
    contact = st.builds(lambda person, learned, op_uuid: {
        "uuid": op_uuid, "kind": "search_contact", "episode_id": episode_id,
        "recorded_at": "2026-03-02T19:40:00+00:00",
        "fields": {"purpose": "search", "person": person, "relationship": "friend", "method": "phone",
                   "contacted_at": "2026-03-02T13:30", "reached": "reached", "learned": learned}},
        st.sampled_from(MARKUP), st.sampled_from(SHORT_HOSTILE), UUIDS)
    return step | contact


SPOILERS = {
    "uuid": UUIDS | JUNK, "kind": st.sampled_from(["delete_everything", "", "STEP_ENTRY"]) | JUNK,
    "episode_id": st.sampled_from([0, -1, 2**70, "1", True, 1.5]) | JUNK, "step_key": JUNK,
    "recorded_at": INSTANTS | JUNK, "policy_version": JUNK, "fields": JUNK, "as_addendum": JUNK,
}
FIELD_SPOILERS = ("outcome", "done_at", "reason", "evidence", "supersedes", "purpose", "person",
                  "relationship", "method", "contacted_at", "reached", "learned")


def _spoil(op: dict):
    """The op with up to two of its keys, or of its fields, replaced by junk or dropped."""
    top = st.dictionaries(st.sampled_from(sorted(SPOILERS)), st.just(None), max_size=2).flatmap(
        lambda keys: st.fixed_dictionaries({k: SPOILERS[k] | st.just(DROP) for k in keys}))
    inner = st.dictionaries(st.sampled_from(FIELD_SPOILERS),
                            st.sampled_from([*SHORT_HOSTILE, DROP]) | INSTANTS | JUNK, max_size=2)

    def apply(changes):
        top_changes, field_changes = changes
        fields = {k: v for k, v in {**op["fields"], **field_changes}.items() if v is not DROP}
        spoiled = {**op, "fields": fields, **top_changes}
        return {k: v for k, v in spoiled.items() if v is not DROP}
    return st.tuples(top, inner).map(apply)


DROP = object()


def _op(episode_id: int):
    valid = _valid_op(episode_id)
    return st.one_of(valid, valid.flatmap(_spoil), JUNK)


def _batch(episode_id: int):
    ops = st.lists(_op(episode_id), max_size=4)
    structured = st.fixed_dictionaries({"ops": ops}, optional={
        "device_time": INSTANTS | JUNK, "held": st.integers(-5, 2**70) | JUNK,
        "device_id": UUIDS | JUNK,
        "discarded": st.lists(st.fixed_dictionaries({
            "uuid": UUIDS, "kind": st.sampled_from(["step_entry", "search_contact", "nope"]),
            "episode_id": st.sampled_from([episode_id, 2**70, "1"]), "discarded_at": INSTANTS}),
            max_size=2) | JUNK})
    raw = st.one_of(st.binary(max_size=60), st.sampled_from(
        [b"", b"{", b'{"ops": [', b"null", b"[]", b'{"ops": {}}', b'{"ops": [1e999]}',
         b'{"ops": "' + b"A" * 10_000 + b'"}', b"\xff\xfe{}", b'{"ops": [], "ops": 1}']))
    too_many = st.builds(lambda n: {"ops": [{"uuid": str(uuid.uuid4()), "kind": "search_contact"}] * n},
                         st.integers(501, 700))
    plain = st.fixed_dictionaries({"ops": ops})
    return st.one_of(plain, plain, structured, structured, JUNK.map(lambda j: {"json": j}),
                     raw.map(lambda r: {"raw": r}), too_many)


def test_the_sync_api_survives_hostile_batches(app, scene, client, login, request):
    login(scene.cw_a)
    engine = app.extensions["fieldapp.engine"]
    seen = {"examples": 0, "applied": 0, "refused": 0}

    @settings(max_examples=60)
    @given(body=_batch(scene.episode.id))
    def run(body):
        before = snapshot(engine)
        if "raw" in body:
            response = client.post("/api/v1/sync", data=body["raw"], content_type="application/json")
        else:
            response = client.post("/api/v1/sync", json=body.get("json", body))
        seen["examples"] += 1
        assert response.status_code < 500, body
        assert response.is_json
        if response.status_code >= 400:
            seen["refused"] += 1
            assert_unchanged(before, snapshot(engine), f"sync {body!r:.300}")
            return
        answer = response.get_json()
        sent = json.loads(body["raw"]) if "raw" in body else body.get("json", body)
        assert len(answer["results"]) == len(sent["ops"])
        statuses = {result["status"] for result in answer["results"]}
        assert statuses <= {"applied", "duplicate", "conflict", "rejected"}
        seen["applied"] += "applied" in statuses
        if not statuses & {"applied"} and sent.get("device_id") is None and not sent.get("discarded"):
            assert_unchanged(before, snapshot(engine), f"sync without an applied op {body!r:.300}")
    run()
    for url in display_pages(scene):
        page = client.get(url)
        assert page.status_code < 500, url
        assert_no_raw_markup(url, page.text)
    request.node.user_properties.append(("examples", seen["examples"]))
    print(f"sync: {seen}")

