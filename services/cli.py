"""The ``oec-sync`` command: the embedded run, and the sub-commands of the services
(services/commands.py) and of the snapshot archive (services/snapshots.py), added here.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from common.errors import NoCatalogueError
from common.records import Source
from runtime.collector import spare_the_exit, tune_for_batches
from runtime.config import Settings
from services import commands, snapshots
from services.options import (
    EuOption,
    MaxPrsOption,
    NasaOption,
    folder,
    make_console,
    new_app,
    new_file,
    oec_checkout,
)

if TYPE_CHECKING:
    from services.publisher.handler import RunState

app = new_app(
    "Keep the Open Exoplanet Catalogue (OEC) current from the NASA Exoplanet Archive and "
    "exoplanet.eu: one branch and pull request per changed system.\n\n"
    "Start with `oec-sync run`; the other commands run and operate the services."
)


@app.callback()
def main_callback() -> None:
    # A callback keeps `run` a sub-command; the group's help is new_app's. Every command
    # holds many long-lived objects: the collector runs rarely (runtime/collector.py).
    tune_for_batches()


app.add_typer(commands.services_app)  # fetcher, indexer, merger, publisher, replay ...
app.add_typer(snapshots.snapshots_app, name="snapshots")


# What a dry run says instead of what a run did (services/publisher/model.py PublishState).
DRY_RUN_STATE = {"opened": "would open", "updated": "would update", "failed": "would fail"}
STATE_ORDER = ["opened", "updated", "failed", "suppressed", "queued", "up to date"]


def said(state: str, dry_run: bool) -> str:
    return DRY_RUN_STATE.get(state, state) if dry_run else state


OecRepoOption = Annotated[
    Path,
    typer.Option(
        metavar="DIR",
        help="the OEC checkout: a git clone of open_exoplanet_catalogue",
        callback=oec_checkout,
    ),
]
ReportOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="write the JSON report here", callback=new_file),
]
QualityHtmlOption = Annotated[
    Path | None,
    typer.Option(metavar="FILE", help="write the data-quality page (HTML) here", callback=new_file),
]
OutboxOption = Annotated[
    Path | None,
    typer.Option(
        metavar="DIR",
        help="folder for the PR drafts (made if missing)",
        show_default="OEC_SYNC_OUTBOX, else DATA_DIR/outbox",
        callback=folder,
    ),
]
DryRunOption = Annotated[
    bool,
    typer.Option("--dry-run", help="list what would be opened, updated or queued; write nothing"),
]
FullOption = Annotated[
    bool,
    typer.Option("--full", help="recompute everything, ignoring what earlier runs remembered"),
]


@app.command("run")
def run_command(
    oec_repo: OecRepoOption,
    nasa: NasaOption = None,
    eu: EuOption = None,
    report: ReportOption = None,
    quality_html: QualityHtmlOption = None,
    max_prs: MaxPrsOption = None,
    outbox: OutboxOption = None,
    dry_run: DryRunOption = False,
    full: FullOption = False,
) -> None:
    """Run the whole pipeline once, here, on a local OEC checkout.

    The four services' handlers run in this process. Each changed system gets a branch
    oec-sync/<system> in the checkout (HEAD and the working tree are left alone) and a PR
    draft (title + body) in the outbox. With OEC_SYNC_GITHUB_TOKEN set, branches go to the
    fork and pull requests to GitHub instead.

    A catalogue that cannot be read is reported and the other one still goes ahead; when
    none can be read, the run writes nothing and exits 1.
    """
    from services import embedded
    from services.publisher import reports

    settings = Settings()
    console = make_console()
    locations = {s: loc for s, loc in ((Source.NASA, nasa), (Source.EU, eu)) if loc}
    if not locations:
        raise typer.BadParameter("give at least one catalogue", param_hint="'--nasa' / '--eu'")
    from services.publisher.model import DryRun
    from services.publisher.sinks import sink_from_settings

    drafts = outbox or settings.outbox_dir
    sink = sink_from_settings(settings, oec_repo.resolve(), drafts)
    if dry_run:
        sink = DryRun(sink)
    with embedded.ending_cleanly(console, sink):
        try:
            state = embedded.run(
                oec_repo,
                locations,
                drafts,
                settings.max_prs if max_prs is None else max_prs,
                console,
                sink,
                full=full,
                processes=settings.processes,
            )
        except NoCatalogueError as exc:
            for source, error in exc.failures.items():
                console.print(f"[red]{source} failed:[/red] {error}", highlight=False)
            console.print(f"[red]{exc}[/red]", highlight=False)
            raise typer.Exit(1) from None
        if not state.completed:
            # Every planet announced must come back as an outcome; a run that lost some
            # publishes nothing rather than a part that looks like the whole.
            console.print("[red]the run did not complete; nothing written[/red]")
            raise typer.Exit(1)
        tell(console, state, dry_run)
        if report:
            reports.write_report(state, report, dry_run=dry_run)
            console.print(f"report written to {report}")
        if quality_html:
            reports.write_quality_html(state, quality_html)
            console.print(f"quality page written to {quality_html}")


def tell(console: Console, state: RunState, dry_run: bool) -> None:
    """What the run did, as its last lines: the counts, and what failed."""
    from services.publisher import reports

    console.print(reports.summary_table(state))
    if dry_run:
        console.print(dry_run_table(state))
    counts = Counter(p.state.value for p in state.published)
    summary = ", ".join(f"{counts[s]} {said(s, dry_run)}" for s in STATE_ORDER if counts[s])
    summary = summary or "no changes"
    prefix = "dry run, no branch or draft written; " if dry_run else ""
    console.print(f"{prefix}systems: {summary}; refused: {len(state.refusals)}")
    if state.deferred:
        console.print(f"{len(state.deferred)} more edited files wait for later runs (cap)")
    for source, error in state.failed.items():
        console.print(f"[red]{source.value} failed:[/red] {error}", highlight=False)
    for planet in state.failed_planets():
        where = escape(f"{planet.planet} ({planet.source.value} row {planet.row})")
        console.print(f"[red]{where} failed:[/red] {escape(planet.error)}")


def dry_run_table(state: RunState) -> Table:
    """What a run would do: every system it would open, update or queue (or that would
    fail), in that order; systems already up to date are only counted."""
    table = Table("system", "branch", "state", "note")
    rows = [p for p in state.published if p.state.value != "up to date"]
    rows.sort(key=lambda p: (STATE_ORDER.index(p.state.value), p.proposal.file))
    for published in rows:
        table.add_row(
            published.proposal.file,
            published.proposal.branch,
            said(published.state.value, dry_run=True),
            published.error or "",
        )
    return table


def main() -> None:
    """The ``oec-sync`` program (its commands are ``app``'s)."""
    try:
        app()
    finally:
        spare_the_exit()


if __name__ == "__main__":
    main()
