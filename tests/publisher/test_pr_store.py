"""Fingerprints and the publisher's database."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from common.changes import ChangeKind, FieldChange
from common.records import Source, Value
from services.publisher.pr_store import PrStore, PullState, fingerprint
from testing.proposals import proposal_for

from .conftest import SYSTEMS

FILE = "systems/11 Com.xml"
TEXT = (SYSTEMS / "11 Com.xml").read_text(encoding="utf-8")


def lastupdate(date: str) -> FieldChange:
    return FieldChange(
        object="11 Com b",
        path="/system/star/planet",
        field="lastupdate",
        kind=ChangeKind.UPDATED,
        new=Value(value=date),
        source=Source.NASA,
    )


def test_fingerprint_is_the_values_not_the_provenance() -> None:
    base = proposal_for(FILE, TEXT, "0" * 40)
    same = base.model_copy(
        update={
            "changes": [
                c.model_copy(update={"source_row": 9000, "source_date": dt.date(2027, 1, 1)})
                for c in base.changes
            ]
            + [lastupdate("26/08/01")],
            "body": "another body",
            "base_commit": "1" * 40,
        }
    )
    assert fingerprint(same) == fingerprint(base)
    other_value = proposal_for(FILE, TEXT, "0" * 40, variant="2")
    assert fingerprint(other_value) != fingerprint(base)
    change = base.changes[0]
    other_error = base.model_copy(
        update={
            "changes": [
                change.model_copy(
                    update={
                        "new": dataclasses.replace(change.new, errorplus="0.5", errorminus="0.5")
                    }
                )
            ]
        }
    )
    assert fingerprint(other_error) != fingerprint(base)
    other_file = base.model_copy(update={"file": "systems/12 Com.xml"})
    assert fingerprint(other_file) != fingerprint(base)


def test_fingerprint_ignores_the_order_of_changes() -> None:
    base = proposal_for(FILE, TEXT, "0" * 40)
    extra = base.changes[0].model_copy(update={"field": "radius", "object": "11 Com"})
    one = base.model_copy(update={"changes": [base.changes[0], extra]})
    two = base.model_copy(update={"changes": [extra, base.changes[0]]})
    assert fingerprint(one) == fingerprint(two)


def test_store_remembers_rejections_across_reopening(tmp_path: Path) -> None:
    path = tmp_path / "data" / "pulls.sqlite3"
    store = PrStore(path)
    store.record_open(7, "oec-sync/11_Com", "ab" * 32, "c" * 40, "https://x/pull/7")
    store.record_open(8, "oec-sync/HD_1", "cd" * 32, "d" * 40, "https://x/pull/8")
    with store.transaction():
        store.record_closed(7, "oec-sync/11_Com", "ab" * 32, False, "", "https://x/pull/7")
        store.record_closed(8, "oec-sync/HD_1", "cd" * 32, True, "e" * 40, "https://x/pull/8")
    store.close()

    store = PrStore(path)
    assert store.rejected("oec-sync/11_Com", "ab" * 32)
    assert not store.rejected("oec-sync/11_Com", "ef" * 32)
    assert not store.rejected("oec-sync/HD_1", "cd" * 32)  # merged is not rejected
    pulls = {p.number: p for p in store.branches_to_delete()}
    assert pulls[7].head_sha == "c" * 40 and pulls[7].state is PullState.CLOSED
    assert pulls[8].head_sha == "e" * 40 and pulls[8].state is PullState.MERGED
    store.mark_branch_deleted([7, 8])
    assert store.branches_to_delete() == []
    assert store.open_pulls() == []
    store.close()


def test_queue_keeps_the_first_place(tmp_path: Path) -> None:
    store = PrStore(tmp_path / "pulls.sqlite3")
    store.enqueue(["oec-sync/b", "oec-sync/c"])
    store.enqueue(["oec-sync/a", "oec-sync/c"])
    order = store.queue_order()
    assert order["oec-sync/b"] == order["oec-sync/c"] < order["oec-sync/a"]
    store.dequeue(["oec-sync/b"])
    assert set(store.queue_order()) == {"oec-sync/a", "oec-sync/c"}
    store.close()
