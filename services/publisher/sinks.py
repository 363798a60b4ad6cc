"""Which sink a process publishes through: the one place that chooses.

With a GitHub token (``OEC_SYNC_GITHUB_TOKEN``): :class:`~services.publisher.github.GitHubSink`
(the fork, pull requests). Without: :class:`~services.publisher.local.LocalSink`, branches in
the OEC checkout and PR drafts in the outbox (``OEC_SYNC_OUTBOX``, else ``DATA_DIR/outbox``).
"""

from __future__ import annotations

from pathlib import Path

from runtime.config import Settings
from services.publisher.model import Sink


def sink_from_settings(
    settings: Settings, repo: Path | None = None, outbox: Path | None = None
) -> Sink:
    """The sink the settings ask for; ``repo`` and ``outbox`` override OEC_SYNC_OEC_REPO and
    the outbox of a sink without a token."""
    token = settings.github_token
    if token is not None and token.get_secret_value():
        from services.publisher.github import GitHubSink

        return GitHubSink.from_settings(settings)
    from services.publisher.local import LocalSink

    return LocalSink(
        repo or settings.oec_repo, outbox or settings.outbox_dir, processes=settings.processes
    )
