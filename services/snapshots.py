"""``oec-sync snapshots list|show|reprocess|prune``: the snapshot archive from the command line.

Reprocessing turns archived downloads back into a run: one ``run.started`` and one
``catalogue.downloaded`` per snapshot, under a new run id, with each download's original URL
and time. Where those messages go is one seam, a ``Republish`` function:

- ``broker_republisher``: the RabbitMQ exchange, when ``OEC_SYNC_AMQP_URL`` is set; the
  running indexer, mergers and publisher take it from there;
- ``embedded_republisher``: the four handlers in this process over the in-memory bus, against
  a local OEC checkout, as ``oec-sync run`` does (no broker named, or ``--embedded``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from common import topology
from common.archive import Archive, ArchiveError, Recorder, Snapshot, SnapshotState
from common.config import Settings
from common.errors import NoCatalogueError, NotAnOecCheckoutError, OecSyncError
from common.messages import Message, RunStarted, stable_id
from common.oec.checkout import check_checkout
from common.records import Source
from services.options import MaxPrsOption, folder, make_console, new_app, oec_checkout

Republish = Callable[[Sequence[Message]], None]
"""Publishes a reprocessed run's messages, in order; raises if they could not all go out."""

snapshots_app = new_app("The archive of every catalogue download (gzip, by sha256).")

ArchiveDirOption = Annotated[
    Path | None,
    typer.Option(
        "--archive-dir",
        metavar="DIR",
        help="the archive",
        callback=folder,
        show_default="OEC_SYNC_ARCHIVE__DIR, else DATA_DIR/snapshots",
    ),
]


def open_archive(settings: Settings, archive_dir: Path | None) -> Archive:
    root = archive_dir or settings.archive_dir
    if not (root / "manifest.sqlite3").exists():
        raise typer.BadParameter(f"no snapshot archive at {root}", param_hint="--archive-dir")
    return Archive(root)


def _resolve(archive: Archive, ref: str) -> Snapshot:
    try:
        return archive.resolve(ref)
    except ArchiveError as exc:
        raise typer.BadParameter(str(exc), param_hint="SNAPSHOT") from exc


def _size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in ("KiB", "MiB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


@snapshots_app.command("list")
def list_command(
    source: Annotated[Source | None, typer.Option(help="only this catalogue")] = None,
    state: Annotated[SnapshotState | None, typer.Option(help="only this state")] = None,
    limit: Annotated[int, typer.Option(metavar="N", min=0, help="newest N; 0 = all")] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="JSON lines instead of a table")] = False,
    archive_dir: ArchiveDirOption = None,
) -> None:
    """The archived downloads, newest first."""
    archive = open_archive(Settings(), archive_dir)
    rows = archive.snapshots(source, state, limit or None)
    if as_json:
        for snapshot in rows:
            typer.echo(snapshot.model_dump_json())
        return
    table = Table(title=f"snapshots in {archive.root}")
    for column in ("id", "fetched (UTC)", "catalogue", "sha256", "size", "rows", "rejected"):
        table.add_column(column, justify="right" if column in {"id", "size", "rows"} else "left")
    table.add_column("state")
    table.add_column("run")
    for s in rows:
        table.add_row(
            str(s.id),
            f"{s.fetched_at:%Y-%m-%d %H:%M}",
            s.source.value,
            s.sha256[:12],
            _size(s.size),
            "-" if s.rows is None else str(s.rows),
            str(s.rejected),
            s.state.value,
            s.run_id,
        )
    make_console(stderr=False).print(table)


@snapshots_app.command("show")
def show_command(
    snapshot: Annotated[
        str, typer.Argument(metavar="SNAPSHOT", help="manifest id or sha256 prefix (7+ hex)")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="one JSON object")] = False,
    archive_dir: ArchiveDirOption = None,
) -> None:
    """One download: its origin, its run and its rejected rows.

    Where and when it came from, the run it started, and every row the indexer rejected.
    """
    archive = open_archive(Settings(), archive_dir)
    found = _resolve(archive, snapshot)
    rejected = archive.rejected_rows(found.id)
    if as_json:
        document = found.model_dump(mode="json")
        document["object"] = str(archive.object_path(found.sha256))
        document["rejected_rows"] = [r.model_dump() for r in rejected]
        typer.echo(json.dumps(document, indent=2))
        return
    console = make_console(stderr=False)
    fields = {
        "id": found.id,
        "catalogue": found.source.value,
        "url": found.url,
        "fetched": found.fetched_at.isoformat(timespec="seconds"),
        "sha256": found.sha256,
        "size": f"{found.size} bytes ({_size(found.stored_size)} stored)",
        "object": archive.object_path(found.sha256),
        "run": found.run_id,
        "rows": "-" if found.rows is None else found.rows,
        "state": found.state.value + (f" ({found.detail})" if found.detail else ""),
        "rejected": len(rejected),
    }
    for name, value in fields.items():
        console.print(f"[bold]{name:>9}[/bold]  {value}", highlight=False)
    if rejected:
        table = Table(title="rejected rows")
        table.add_column("row", justify="right")
        table.add_column("column")
        table.add_column("reason")
        for r in rejected:
            table.add_row(str(r.row), r.column or "", r.reason)
        console.print(table)


def reprocess_messages(
    archive: Archive, snapshots: Sequence[Snapshot], now: dt.datetime
) -> list[Message]:
    """A new run of ``snapshots``: run.started, then one catalogue.downloaded per snapshot.

    The run id is new (time and hashes), so consumers treat it as a run of its own rather
    than as a redelivery of the original, which they would ignore.
    """
    sources = [s.source for s in snapshots]
    if len(set(sources)) != len(sources):
        raise ArchiveError("one snapshot per catalogue in a run")
    digest = stable_id("reprocess", now.isoformat(), *(s.sha256 for s in snapshots))
    run_id = f"{now:%Y%m%d}-reprocess-{digest[:8]}"
    messages: list[Message] = [RunStarted(run_id=run_id, catalogues=sorted(sources))]
    messages += [archive.message(s, run_id) for s in snapshots]
    return messages


def broker_republisher(settings: Settings) -> Republish:
    """Publish through the RabbitMQ bus; returns once the broker confirmed every message.

    A publisher-only connection (no consumer), named ``snapshots`` in the broker's view.
    """
    from common.bus.rabbitmq import RabbitMQBus

    def republish(messages: Sequence[Message]) -> None:
        bus = RabbitMQBus(settings.bus, settings.amqp_url, "snapshots").start()
        try:
            bus.publish_many(messages)
        finally:
            bus.stop()

    return republish


def embedded_republisher(
    repo: Path,
    outbox: Path,
    max_prs: int,
    recorder: Recorder | None,
    console: Console,
) -> Republish:
    """Run the four handlers on the messages in this process, as ``oec-sync run`` does."""
    # Imported here: the handlers pull in astropy and pandas, which list/show do not need.
    from services import embedded
    from services.publisher import reports

    def republish(messages: Sequence[Message]) -> None:
        extra = [(topology.ARCHIVE, recorder)] if recorder is not None else []
        state = embedded.process(repo, messages, outbox, max_prs, console, extra)
        for source, error in state.failed.items():
            console.print(f"[red]{source.value} failed:[/red] {error}", highlight=False)
        if not state.planned:
            raise NoCatalogueError({s.value: e for s, e in state.failed.items()})
        console.print(reports.summary_table(state))

    return republish


@snapshots_app.command("reprocess")
def reprocess_command(
    snapshots: Annotated[
        list[str],
        typer.Argument(
            metavar="SNAPSHOT", help="manifest ids or sha256 prefixes, one per catalogue"
        ),
    ],
    embedded: Annotated[
        bool, typer.Option("--embedded", help="run here even when a broker is configured")
    ] = False,
    oec_repo: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="embedded: the OEC checkout",
            show_default="OEC_SYNC_OEC_REPO",
            callback=oec_checkout,
        ),
    ] = None,
    outbox: Annotated[
        Path | None,
        typer.Option(
            metavar="DIR",
            help="embedded: folder for the PR drafts",
            show_default="OEC_SYNC_OUTBOX, else DATA_DIR/outbox",
            callback=folder,
        ),
    ] = None,
    max_prs: MaxPrsOption = None,
    archive_dir: ArchiveDirOption = None,
) -> None:
    """Run archived downloads through the pipeline again.

    They make a new run. With OEC_SYNC_AMQP_URL set, it goes to the broker for the running
    services; otherwise (or with --embedded) it runs in this process against a local OEC
    checkout.
    """
    settings = Settings()
    console = make_console()
    archive = open_archive(settings, archive_dir)
    chosen = [_resolve(archive, ref) for ref in snapshots]
    try:
        messages = reprocess_messages(archive, chosen, dt.datetime.now(dt.UTC))
    except ArchiveError as exc:
        raise typer.BadParameter(str(exc), param_hint="SNAPSHOTS") from exc
    if settings.broker_configured and not embedded:
        republish = broker_republisher(settings)
        where = "the broker"
    else:
        repo = oec_repo or settings.oec_repo
        try:
            check_checkout(repo)  # again: OEC_SYNC_OEC_REPO has no option callback
        except NotAnOecCheckoutError as exc:
            hint = "'--oec-repo' / OEC_SYNC_OEC_REPO"
            raise typer.BadParameter(str(exc), param_hint=hint) from None
        recorder = Recorder(archive, settings.archive.max_age_days, settings.archive.max_count)
        republish = embedded_republisher(
            repo,
            outbox or settings.outbox_dir,
            settings.max_prs if max_prs is None else max_prs,
            recorder,
            console,
        )
        where = f"this process (OEC checkout {repo})"
    run_id = messages[0].run_id
    console.print(f"reprocessing {', '.join(str(s.id) for s in chosen)} as run {run_id} in {where}")
    try:
        republish(messages)
    except OecSyncError as exc:
        console.print(f"[red]reprocess failed:[/red] {exc}")
        raise typer.Exit(1) from exc
    console.print(f"run {run_id}: {len(messages) - 1} catalogue(s) published")


@snapshots_app.command("prune")
def prune_command(
    dry_run: Annotated[bool, typer.Option("--dry-run", help="list, delete nothing")] = False,
    archive_dir: ArchiveDirOption = None,
) -> None:
    """Apply retention now (it also runs after every completed run).

    Deletes finished snapshots older than OEC_SYNC_ARCHIVE__MAX_AGE_DAYS or beyond the newest
    OEC_SYNC_ARCHIVE__MAX_COUNT per catalogue; never pending or unfinished ones.
    """
    settings = Settings()
    archive = open_archive(settings, archive_dir)
    doomed = archive.prune(
        dt.datetime.now(dt.UTC),
        settings.archive.max_age_days,
        settings.archive.max_count,
        dry_run=dry_run,
    )
    verb = "would delete" if dry_run else "deleted"
    for s in doomed:
        typer.echo(f"{verb} {s.id} {s.source.value} {s.fetched_at:%Y-%m-%d} {s.sha256[:12]}")
    typer.echo(f"{verb} {len(doomed)} snapshot(s)")
