"""Fetcher: download each catalogue and announce it; no state, and no parsing beyond the
header line, which must be the catalogue's it was fetched as."""

from __future__ import annotations

import datetime as dt
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

from common.catalogues import check_source
from common.errors import NotACatalogueError
from common.messages import CatalogueDownloaded, CatalogueFailed, Message, RunStarted, stable_id
from common.records import Source

if TYPE_CHECKING:
    import httpx


class DownloadFailed(Exception):
    """A catalogue could not be downloaded; the message says why, in a few words."""


def is_url(location: str) -> bool:
    return location.startswith(("http://", "https://"))


def download(location: str, client: httpx.Client | None) -> bytes:
    """The bytes at a URL (through ``client``) or a local path; raises DownloadFailed."""
    if not is_url(location):
        try:
            return Path(location).read_bytes()
        except FileNotFoundError:
            raise DownloadFailed("does not exist") from None
        except IsADirectoryError:
            raise DownloadFailed("is a directory, not a file") from None
        except OSError as exc:
            raise DownloadFailed(exc.strerror.lower() if exc.strerror else str(exc)) from None
    import httpx  # here: a run on downloaded files needs no HTTP stack (0.2 s)

    assert client is not None  # fetch() makes one when a location is a URL
    try:
        timeout = httpx.Timeout(30.0, read=300.0)
        response = client.get(location, timeout=timeout, follow_redirects=True)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        status = exc.response
        raise DownloadFailed(f"HTTP {status.status_code} {status.reason_phrase}") from None
    except httpx.TransportError as exc:
        raise DownloadFailed(f"unreachable ({exc or type(exc).__name__})") from None
    except httpx.HTTPError as exc:
        raise DownloadFailed(str(exc)) from None
    return response.content


def default_client() -> httpx.Client:
    import httpx

    # Transport-level retries cover refused connections and resets, not HTTP errors.
    return httpx.Client(transport=httpx.HTTPTransport(retries=3))


def fetch(
    locations: dict[Source, str],
    client: httpx.Client | None = None,
    now: dt.datetime | None = None,
) -> list[Message]:
    """A run.started and one catalogue.downloaded (or .failed) per catalogue; URLs are
    fetched through ``client``, or a :func:`default_client` made for them.

    The run id is derived from the downloaded content, so fetching the same bytes twice
    names the same run and every downstream consumer recognises it.
    """
    now = now or dt.datetime.now(dt.UTC)
    downloads: dict[Source, bytes] = {}
    errors: dict[Source, str] = {}
    with ExitStack() as stack:
        if client is None and any(is_url(location) for location in locations.values()):
            client = stack.enter_context(default_client())
        for source, location in locations.items():
            try:
                data = download(location, client)
                # A download of the other catalogue (or of neither) is no download of this
                # one: announced, the indexer would refuse it anyway, after the run began.
                check_source(data, location, source)
            except DownloadFailed as exc:
                errors[source] = f"{location}: {exc}"
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
