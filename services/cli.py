"""The ``oec-sync`` command: the embedded run and, one sub-command each, the services.

Shared here by every sub-command: how the help looks (``new_app``), how output is printed
(``make_console``) and the checks of paths and catalogue locations, so that a wrong input
costs one line naming the input, before anything runs.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from common.config import Settings
from common.errors import NoCatalogueError, NotAnOecCheckoutError
from common.records import Source

if TYPE_CHECKING:
    from services.publisher.handler import RunState

# Piped or redirected, rich would cut every table to 80 columns; this leaves room for the
# widest one (a replay listing is ~150 columns).
PIPED_WIDTH = 1000


def new_app(help: str) -> typer.Typer:
    """A command group as every ``oec-sync`` group looks.

    Plain click help: rich's help panels show a ``<bool>`` type after every flag and keep
    the hard line breaks of docstrings, click's rewraps paragraphs and shows flags bare.
    """
    return typer.Typer(help=help, no_args_is_help=True, add_completion=False, rich_markup_mode=None)


def make_console(stderr: bool = True) -> Console:
    """The console a command prints through: a terminal's own width, else (piped, or in a
    CI log) room for whole tables; ``COLUMNS`` wins when set."""
    stream = sys.stderr if stderr else sys.stdout
    piped = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=PIPED_WIDTH if piped else None)


def oec_checkout(path: Path | None) -> Path | None:
    """Option callback: ``path`` must be an OEC checkout (common/oec/checkout.py)."""
    from common.oec.checkout import check_checkout

    if path is not None:
        try:
            check_checkout(path)
        except NotAnOecCheckoutError as exc:
            raise typer.BadParameter(str(exc)) from None
    return path


def file_or_url(location: str | None) -> str | None:
    """Option callback: a catalogue location is an http(s) URL or a file that exists."""
    if location is None or location.startswith(("http://", "https://")):
        return location
    path = Path(location)
    if not path.exists():
        raise typer.BadParameter(f"{location} does not exist")
    if path.is_dir():
        raise typer.BadParameter(f"{location} is a directory, not a file")
    return location


def new_file(path: Path | None) -> Path | None:
    """Option callback: a file to write must not be a directory, and its folder must exist
    (checked before the run, not after it)."""
    if path is None:
        return None
    if path.is_dir():
        raise typer.BadParameter(f"{path} is a directory, not a file")
    if not path.parent.is_dir():
        raise typer.BadParameter(f"{path.parent} does not exist")
    return path


def folder(path: Path | None) -> Path | None:
    """Option callback: a folder to write into may be missing (it is made), not a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise typer.BadParameter(f"{path} is a file, not a directory")
    return path


def _default(name: str) -> object:
    return Settings.model_fields[name].default


NasaOption = Annotated[
    str | None,
    typer.Option(
        metavar="FILE|URL",
        help="NASA Exoplanet Archive CSV (pscomppars or ps table)",
        callback=file_or_url,
    ),
]
EuOption = Annotated[
    str | None,
    typer.Option(metavar="FILE|URL", help="exoplanet.eu CSV export", callback=file_or_url),
]
MaxPrsOption = Annotated[
    int | None,
    typer.Option(
        min=0,
        metavar="N",
        help="new systems proposed per run, the rest queued for later runs; 0 = no cap",
        show_default=f"OEC_SYNC_MAX_PRS, else {_default('max_prs')}",
    ),
]

app = new_app(
    "Keep the Open Exoplanet Catalogue (OEC) current from the NASA Exoplanet Archive and "
    "exoplanet.eu: one branch and pull request per changed system.\n\n"
    "Start with `oec-sync run`; the other commands run and operate the services."
)


@app.callback()
def main_callback() -> None:
    # A callback keeps `run` a sub-command; the group's help is new_app's.
    pass


# What a dry run says instead of what a run did (services/publisher/model.py PublishState).
DRY_RUN_STATE = {"opened": "would open", "updated": "would update", "failed": "would fail"}
STATE_ORDER = ["opened", "updated", "failed", "suppressed", "queued", "up to date"]


def said(state: str, dry_run: bool) -> str:
    return DRY_RUN_STATE.get(state, state) if dry_run else state


@app.command("run")
def run_command(
    oec_repo: Annotated[
        Path,
        typer.Option(
            metavar="DIR",
            help="the OEC checkout: a git clone of open_exoplanet_catalogue",
            callback=oec_checkout,
        ),
    ],
    nasa: NasaOption = None,
    eu: EuOption = None,
    report: Annotated[
        Path | None,
        typer.Option(metavar="FILE", help="write the JSON report here", callback=new_file),
    ] = None,
    quality_html: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="write the data-quality page (HTML) here", callback=new_file
        ),
    ] = None,
    max_prs: MaxPrsOption = None,
    outbox: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="folder for the PR drafts (made if missing)",
            show_default="OEC_SYNC_OUTBOX, else ./oec-sync-outbox",
            callback=folder,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="list what would be opened, updated or queued; write nothing"
        ),
    ] = False,
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

    settings = Settings()
    console = make_console()
    locations = {s: loc for s, loc in ((Source.NASA, nasa), (Source.EU, eu)) if loc}
    if not locations:
        raise typer.BadParameter("give at least one catalogue", param_hint="'--nasa' / '--eu'")
    from services.publisher.github import GitHubSink
    from services.publisher.local import LocalSink
    from services.publisher.model import DryRun, Sink

    drafts = outbox or settings.outbox or Path("oec-sync-outbox")
    sink: Sink = LocalSink(oec_repo.resolve(), drafts)
    if settings.github_token is not None and settings.github_token.get_secret_value():
        sink = GitHubSink.from_settings(settings)
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
        console.print(embedded.summary_table(state))
        if dry_run:
            console.print(dry_run_table(state))
        counts = Counter(p.state.value for p in state.published)
        summary = ", ".join(f"{counts[s]} {said(s, dry_run)}" for s in STATE_ORDER if counts[s])
        summary = summary or "no changes"
        prefix = "dry run, no branch or draft written; " if dry_run else ""
        console.print(f"{prefix}systems: {summary}; refused: {len(state.refusals)}")
        for source, error in state.failed.items():
            console.print(f"[red]{source.value} failed:[/red] {error}", highlight=False)
        for planet in state.failed_planets():
            where = escape(f"{planet.planet} ({planet.source.value} row {planet.row})")
            console.print(f"[red]{where} failed:[/red] {escape(planet.error)}")
        if report:
            embedded.write_report(state, report, dry_run=dry_run)
            console.print(f"report written to {report}")
        if quality_html:
            embedded.write_quality_html(state, quality_html)
            console.print(f"quality page written to {quality_html}")


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
    app()


if __name__ == "__main__":
    main()

from services import commands  # noqa: E402, F401, I001  (registers the distributed commands)
from services import snapshots  # noqa: E402, F401  (registers `oec-sync snapshots`)
