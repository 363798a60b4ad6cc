"""The distributed sub-commands of ``oec-sync``: the services, replay, dead letters, sync.

oec-sync fetcher --once [--nasa FILE|URL] [--eu FILE|URL]    the CronJob
oec-sync indexer | merger | publisher [--port N]             the long-running consumers
oec-sync replay --from TIME|OFFSET [--routing-key K] [--run R] [--source S]
oec-sync dead-letters list|replay|purge [--queue indexer|merger|publisher|archive]
oec-sync sync all [--indexer URL]                            rebuild the alias index
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table

from common.records import Source
from runtime.config import Settings
from services.options import EuOption, NasaOption, make_console, new_app

PortOption = Annotated[
    int,
    typer.Option(
        metavar="PORT",
        min=0,
        max=65535,
        help="port of the status API (/healthz /readyz /status /metrics); 0 = any free one",
        show_default=True,
    ),
]
QueueOption = Annotated[
    str | None,
    typer.Option(
        "--queue",
        metavar="QUEUE",
        help="indexer, merger, publisher, archive or failures; default: all",
    ),
]


# Added to the root command without a name by services/cli.py: these are top-level
# commands (`oec-sync fetcher`), grouped here because they all run or operate the services.
services_app = new_app("The services and their operation.")


@services_app.command("fetcher")
def fetcher_command(
    once: Annotated[
        bool,
        typer.Option(
            "--once",
            help="fetch once and exit; the fetcher always does, a CronJob starts it daily",
        ),
    ] = False,
    nasa: NasaOption = None,
    eu: EuOption = None,
    port: Annotated[
        int | None,
        typer.Option(
            metavar="PORT", min=0, max=65535, help="status API while it runs; default: none"
        ),
    ] = None,
) -> None:
    """Download the catalogues and announce them; print the run id.

    Publishes run.started and one catalogue.downloaded per catalogue. Without --nasa/--eu
    both catalogues come from OEC_SYNC_NASA_URL and OEC_SYNC_EU_URL. A download that is not
    the catalogue it was given as is reported and left out; when none remains the fetcher
    publishes nothing and exits 1.
    """
    from common.messages import CatalogueFailed
    from services.fetcher import main

    settings = Settings()
    console = make_console()
    given = {s: loc for s, loc in ((Source.NASA, nasa), (Source.EU, eu)) if loc}
    locations = given or {Source.NASA: settings.nasa_url, Source.EU: settings.eu_url}
    run_id, messages = main.main(settings, locations, port)
    for failed in (m for m in messages if isinstance(m, CatalogueFailed)):
        console.print(f"[red]{failed.source.value} failed:[/red] {failed.error}", highlight=False)
    if run_id is None:
        console.print("[red]no catalogue could be read; nothing published[/red]")
        raise typer.Exit(1)
    print(run_id)


@services_app.command("indexer")
def indexer_command(port: PortOption = 8081) -> None:
    """Match each downloaded catalogue against OEC's alias index.

    The index is of the checkout at OEC_SYNC_OEC_REPO. Also serves POST /webhooks/github
    (push events move the index) and POST /sync.
    """
    from services.indexer import main

    main.main(Settings(), port)


@services_app.command("merger")
def merger_command(port: PortOption = 8082) -> None:
    """Merge matched planets into field-level patches.

    Takes planets.matched messages (50 planets each), publishes their planet.outcomes; run
    as many as needed.
    """
    from services.merger import main

    main.main(Settings(), port)


@services_app.command("publisher")
def publisher_command(port: PortOption = 8083) -> None:
    """Write each complete run's branches and pull requests.

    Collects each run's outcomes and publishes once every planet is accounted for. Run
    exactly one. Also serves GET /runs and /runs/{run_id}.
    """
    from services.publisher import main

    main.main(Settings(), port)


def parse_offset(text: str) -> int | dt.datetime | str:
    """``first``, ``last``, ``next``, a stream offset (integer) or an ISO time (UTC if no
    zone is given)."""
    if text in {"first", "last", "next"}:
        return text
    if text.isdigit():
        return int(text)
    try:
        moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise typer.BadParameter(
            "first, last, next, an offset or an ISO time", param_hint="--from"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str))


@services_app.command("replay")
def replay_command(
    start: Annotated[
        str,
        typer.Option(
            "--from",
            metavar="WHERE",
            help="first, last, next, a stream offset or an ISO time (2026-08-22T06:00Z)",
        ),
    ],
    until: Annotated[
        str | None,
        typer.Option(metavar="TIME", help="ISO time: leave out events published after it"),
    ] = None,
    routing_key: Annotated[
        list[str] | None,
        typer.Option("--routing-key", "-k", metavar="KEY", help="only these events (repeatable)"),
    ] = None,
    run: Annotated[
        str | None, typer.Option("--run", metavar="RUN_ID", help="only this run's events")
    ] = None,
    source: Annotated[Source | None, typer.Option(help="only this catalogue's events")] = None,
    message_id: Annotated[
        list[str] | None,
        typer.Option("--message-id", metavar="ID", help="only these messages (repeatable)"),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="list what would be replayed; publish nothing")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Republish events from the replay log (a RabbitMQ stream).

    For example, to reprocess one catalogue: --routing-key catalogue.downloaded --run RUN
    --source nasa.

    Consumers are idempotent: replaying a run that already produced its branches and pull
    requests produces none twice.
    """
    from services import replay

    console = make_console()

    settings = Settings()
    offset = parse_offset(start)
    end = parse_offset(until) if until else None
    if end is not None and not isinstance(end, dt.datetime):
        raise typer.BadParameter("an ISO time", param_hint="--until")
    selection = replay.Selection(
        routing_keys=frozenset(routing_key or ()),
        run_id=run,
        source=source.value if source else None,
        message_ids=frozenset(message_id or ()),
    )
    result = replay.replay(settings, offset, selection, until=end, dry_run=dry_run)
    if as_json:
        _print_json({**result.as_dict(), "events": result.events if dry_run else None})
        return
    if dry_run:
        table = Table("offset", "routing key", "run", "source", "message id", "published")
        for e in result.events:
            table.add_row(
                str(e.get("offset")),
                e["routing_key"],
                e["run_id"] or "",
                e["source"] or "",
                e["message_id"] or "",
                e["published_at"] or "",
            )
        console.print(table)
    verb = "would replay" if dry_run else "replayed"
    console.print(
        f"read {result.read} events; {verb} {result.selected}"
        + (f" as {result.replay_id}" if not dry_run else "")
        + (f": {result.by_routing_key}" if result.by_routing_key else "")
    )


dead_letters_app = new_app("The .dead queues: what the services gave up on.")
services_app.add_typer(dead_letters_app, name="dead-letters")


@dead_letters_app.command("list")
def dead_letters_list(
    queue: QueueOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """Show the dead letters (they stay where they are)."""
    from services import replay

    console = make_console()

    letters = replay.list_dead_letters(Settings(), queue)
    if as_json:
        _print_json([d.as_dict() for d in letters])
        return
    table = Table("queue", "routing key", "run", "reason", "died at", "message id", "about")
    for d in letters:
        table.add_row(
            d.queue,
            d.routing_key,
            d.run_id or "",
            d.reason or "",
            d.died_at or "",
            d.message_id or "",
            d.summary,
        )
    console.print(table)
    console.print(f"{len(letters)} dead letters")


@dead_letters_app.command("replay")
def dead_letters_replay(
    queue: QueueOption = None,
    message_id: Annotated[
        list[str] | None,
        typer.Option("--message-id", metavar="ID", help="only these (repeatable)"),
    ] = None,
) -> None:
    """Send dead letters back to the queue they died in.

    Do it after the cause is fixed, or they die again.
    """
    from services import replay

    console = make_console()

    replay_id, moved = replay.replay_dead_letters(Settings(), queue, frozenset(message_id or ()))
    console.print(f"sent {moved} dead letters back as {replay_id}")


@dead_letters_app.command("purge")
def dead_letters_purge(
    queue: QueueOption = None,
    yes: Annotated[bool, typer.Option("--yes", help="really delete them")] = False,
) -> None:
    """Delete the dead letters for good."""
    from services import replay

    console = make_console()

    if not yes:
        console.print("purging deletes the messages for good; add --yes")
        raise typer.Exit(2)
    purged = replay.purge_dead_letters(Settings(), queue)
    for name, count in purged.items():
        console.print(f"{name}: {count} purged")


sync_app = new_app("Upkeep of the indexer's alias index.")
services_app.add_typer(sync_app, name="sync")


@sync_app.command("all")
def sync_all_command(
    indexer: Annotated[
        str | None,
        typer.Option(metavar="URL", help="URL of a running indexer's API; default: rebuild here"),
    ] = None,
) -> None:
    """Rebuild the alias index from the whole OEC checkout.

    The checkout is OEC_SYNC_OEC_REPO. With --indexer the running indexer rebuilds its own
    index; without, the index cache in the checkout is rebuilt here (a running indexer
    picks it up when it restarts).
    """
    console = make_console()
    if indexer:
        import httpx

        token = Settings().status_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        response = httpx.post(
            f"{indexer.rstrip('/')}/sync", params={"full": True}, headers=headers, timeout=30
        )
        response.raise_for_status()
        console.print(f"the indexer at {indexer} is rebuilding its index")
        return
    from services.indexer import main

    commit = main.sync_all(Settings())
    console.print(f"alias index rebuilt at {commit}")
    sys.stdout.write(commit + "\n")
