"""The ``oec-sync`` command: the embedded run and, one sub-command each, the services."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from common.config import Settings
from common.records import Source

app = typer.Typer(
    help="Keep the Open Exoplanet Catalogue current: one branch and PR per changed system.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main_callback() -> None:
    """Keep the Open Exoplanet Catalogue current: one branch and PR per changed system."""


@app.command("run")
def run_command(
    oec_repo: Annotated[Path, typer.Option(help="git checkout of open_exoplanet_catalogue")],
    nasa: Annotated[str | None, typer.Option(help="NASA CSV: file or URL")] = None,
    eu: Annotated[str | None, typer.Option(help="exoplanet.eu CSV: file or URL")] = None,
    report: Annotated[Path | None, typer.Option(help="write the JSON report here")] = None,
    quality_html: Annotated[
        Path | None, typer.Option(help="write the data-quality page (HTML) here")
    ] = None,
    max_prs: Annotated[
        int | None, typer.Option(help="systems proposed per run, 0 = no cap [OEC_SYNC_MAX_PRS]")
    ] = None,
    outbox: Annotated[
        Path | None, typer.Option(help="folder for PR drafts [OEC_SYNC_OUTBOX]")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show what would be opened; write nothing")
    ] = False,
) -> None:
    """Run the whole pipeline once, in this process, against a local OEC checkout.

    Each changed system gets a branch oec-sync/<system> in the checkout (HEAD and the working
    tree are left alone) and a PR draft (title + body) in the outbox. With
    OEC_SYNC_GITHUB_TOKEN set, branches go to the fork and pull requests to GitHub instead.
    """
    from services import embedded

    settings = Settings()
    # Piped output gets rich's 80 columns, too narrow for the summary table.
    console = Console(stderr=True, width=None if sys.stderr.isatty() else 140)
    locations = {s: loc for s, loc in ((Source.NASA, nasa), (Source.EU, eu)) if loc}
    if not locations:
        raise typer.BadParameter("give --nasa and/or --eu")
    if not (oec_repo / ".git").exists():
        raise typer.BadParameter(f"{oec_repo} is not a git checkout", param_hint="--oec-repo")
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
        state = embedded.run(
            oec_repo,
            locations,
            drafts,
            settings.max_prs if max_prs is None else max_prs,
            console,
            sink,
        )
        console.print(embedded.summary_table(state))
        by_state: dict[str, int] = {}
        for published in state.published:
            by_state[published.state.value] = by_state.get(published.state.value, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(by_state.items())) or "no changes"
        console.print(f"systems: {summary}; refused: {len(state.refusals)}")
        for source, error in state.failed.items():
            console.print(f"[red]{source.value} failed:[/red] {error}")
        if report:
            embedded.write_report(state, report)
            console.print(f"report written to {report}")
        if quality_html:
            embedded.write_quality_html(state, quality_html)
            console.print(f"quality page written to {quality_html}")
        if len(state.failed) == len(locations):
            sys.exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    main()

from services import commands  # noqa: E402, F401, I001  (registers the distributed commands)
from services import snapshots  # noqa: E402, F401  (registers `oec-sync snapshots`)
