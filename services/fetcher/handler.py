"""Fetcher: download each catalogue and announce it; no state, and no parsing beyond the
header line, which must be the catalogue's it was fetched as."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import httpx

from common.catalogues import check_source
from common.errors import NotACatalogueError
from common.messages import CatalogueDownloaded, CatalogueFailed, Message, RunStarted, stable_id
from common.records import Source

DOWNLOAD_TIMEOUT = httpx.Timeout(30.0, read=300.0)


def download(location: str, client: httpx.Client) -> bytes:
    """The bytes at a URL or a local path; raises OSError/httpx.HTTPError on failure."""
    if location.startswith(("http://", "https://")):
        response = client.get(location, timeout=DOWNLOAD_TIMEOUT, follow_redirects=True)
        response.raise_for_status()
        return response.content
    return Path(location).read_bytes()


def failure(exc: OSError | httpx.HTTPError) -> str:
    """Why a download failed, in a few words."""
    if isinstance(exc, FileNotFoundError):
        return "does not exist"
    if isinstance(exc, IsADirectoryError):
        return "is a directory, not a file"
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code} {exc.response.reason_phrase}"
    if isinstance(exc, httpx.TransportError):
        return f"unreachable ({exc or type(exc).__name__})"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc)


def default_client() -> httpx.Client:
    # Transport-level retries cover refused connections and resets, not HTTP errors.
    return httpx.Client(transport=httpx.HTTPTransport(retries=3))


def fetch(
    locations: dict[Source, str],
    client: httpx.Client,
    now: dt.datetime | None = None,
) -> list[Message]:
    """A run.started and one catalogue.downloaded (or .failed) per catalogue.

    The run id is derived from the downloaded content, so fetching the same bytes twice
    names the same run and every downstream consumer recognises it.
    """
    now = now or dt.datetime.now(dt.UTC)
    downloads: dict[Source, bytes] = {}
    errors: dict[Source, str] = {}
    for source, location in locations.items():
        try:
            data = download(location, client)
            # A download of the other catalogue (or of neither) is no download of this one:
            # announced, the indexer would refuse it anyway, after the run had begun.
            check_source(data, location, source)
        except (OSError, httpx.HTTPError) as exc:
            errors[source] = f"{location}: {failure(exc)}"
        except NotACatalogueError as exc:
            errors[source] = str(exc)
        else:
            downloads[source] = data
    digest = stable_id(*(f"{s}:{CatalogueDownloaded.digest(d)}" for s, d in downloads.items()))
    run_id = f"{now:%Y%m%d}-{digest[:8]}"
    messages: list[Message] = [RunStarted(run_id=run_id, catalogues=sorted(downloads))]
    for source, data in downloads.items():
        messages.append(
            CatalogueDownloaded.from_bytes(run_id, source, locations[source], data, now)
        )
    for source, error in errors.items():
        messages.append(
            CatalogueFailed(run_id=run_id, source=source, url=locations[source], error=error)
        )
    return messages
