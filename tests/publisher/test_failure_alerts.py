"""A push or pull request that fails for a system alerts the admin, once per system."""

from __future__ import annotations

from common.messages import CatalogueCounts, RunPlanned, RunStarted
from common.proposals import Proposal
from common.records import Source
from runtime import alerts
from services.publisher.handler import PublisherHandler
from services.publisher.model import Published, PublishState
from testing.proposals import proposal_for

from .conftest import SYSTEMS

FILE = "systems/11 Com.xml"
TEXT = (SYSTEMS / "11 Com.xml").read_text(encoding="utf-8")
RUN = "20261123-0badc0de"


class FailingSink:
    """GitHub refused one system and took the other."""

    def __init__(self, proposals: list[Proposal]) -> None:
        self.proposals = proposals

    def publish(
        self, proposals: list[Proposal], max_prs: int, progress: object = None
    ) -> list[Published]:
        failed, opened = self.proposals
        return [
            Published(proposal=failed, state=PublishState.FAILED, error="push rejected"),
            Published(proposal=opened, state=PublishState.OPENED),
        ]

    def dry_run(self, proposals: list[Proposal], max_prs: int) -> list[Published]:
        return []


class NoTexts:
    def read(self, commit: str, files: list[str]) -> dict[str, str | None]:
        return dict.fromkeys(files)

    def blobs(self, commit: str) -> dict[str, str]:
        return {}


def test_a_failed_push_alerts_with_branch_error_and_run() -> None:
    failed = proposal_for(FILE, TEXT, "0" * 40, variant="1")
    opened = proposal_for(FILE, TEXT, "0" * 40, variant="2")
    sent: list[alerts.Alert] = []
    handler = PublisherHandler(FailingSink([failed, opened]), NoTexts(), 20, sent.append)  # type: ignore[arg-type]
    handler(RunStarted(run_id=RUN, catalogues=[Source.NASA]))
    (completed,) = handler(
        RunPlanned(
            run_id=RUN,
            source=Source.NASA,
            catalogue="nasa.csv",
            commit="0" * 40,
            planets=0,
            counts=CatalogueCounts(),
        )
    )
    assert completed.run_id == RUN
    assert [a.kind for a in sent] == [alerts.AlertKind.PUSH_FAILED]
    assert sent[0].details == {"branch": failed.branch, "error": "push rejected"}
    assert sent[0].run_id == RUN
