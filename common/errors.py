"""Every error OEC Sync raises on purpose, and whether trying again can help.

    OecSyncError
    ├── GitError                    a git command failed; says why in git's own words
    ├── PermanentError              retrying the same input gives the same failure
    │   ├── NotACatalogueError      not a catalogue: wrong header, binary, truncated
    │   │   └── WrongCatalogueError the other catalogue's table, given as this one
    │   ├── InvalidRowError         one row of a catalogue; reported and skipped
    │   ├── InvalidSystemFileError  an OEC file we would write breaks an OEC rule
    │   ├── NotAnOecCheckoutError   --oec-repo is no git checkout of OEC
    │   ├── NoCatalogueError        no catalogue of a run could be read; nothing is written
    │   └── UnsafeNameError         a system name that cannot become a file name in the repo
    └── RetryableError              the outside world; the bus and the publisher retry these
        ├── BrokerUnavailableError
        └── RepositoryBusyError     another oec-sync process is writing branches to the repo

The bus dead-letters a message whose handler raised a PermanentError at once and requeues
one that raised a RetryableError; nothing matches on error strings. A GitError is neither:
the same command may fail for good (a missing commit) or for a moment (the network), so the
bus treats it as any unexpected error, retried until the delivery limit.
"""

from __future__ import annotations

from pathlib import Path


class OecSyncError(Exception):
    """Base of every error raised on purpose."""


class GitError(OecSyncError):
    """A git command failed (or could not run). ``str()`` is git's own message (its stderr),
    which says what went wrong in git's words ("cannot lock ref ..."); a Python traceback
    would not. Every way OEC Sync runs git (common/gitrepo.py, common/gitwrite.py) raises
    this one type."""

    def __init__(self, command: str, returncode: int, stderr: bytes | str) -> None:
        self.command = command
        self.returncode = returncode
        self.stderr = stderr.decode(errors="replace") if isinstance(stderr, bytes) else stderr
        super().__init__(self.command, self.returncode, self.stderr)

    def __str__(self) -> str:
        message = "\n".join(line for line in self.stderr.strip().splitlines() if line)
        return f"git {self.command}: {message or f'exit status {self.returncode}'}"


class PermanentError(OecSyncError):
    """The same input will fail the same way."""


class RetryableError(OecSyncError):
    """A later attempt may succeed."""


class NotACatalogueError(PermanentError):
    def __init__(self, file: str, reason: str) -> None:
        super().__init__(self._message(file, reason))
        self.file = file
        self.reason = reason

    def _message(self, file: str, reason: str) -> str:
        return f"{file}: not a catalogue: {reason}"


class WrongCatalogueError(NotACatalogueError):
    """A table of one catalogue given where the other is expected (``--eu <NASA file>``)."""

    def _message(self, file: str, reason: str) -> str:
        return f"{file}: {reason}"


class InvalidRowError(PermanentError):
    def __init__(self, file: str, row: int, column: str | None, reason: str) -> None:
        where = f"{file}, row {row}" + (f", column {column}" if column else "")
        super().__init__(f"{where}: {reason}")
        self.file = file
        self.row = row
        self.column = column
        self.reason = reason


class InvalidSystemFileError(PermanentError):
    def __init__(self, file: str, problems: list[str]) -> None:
        super().__init__(f"{file}: " + "; ".join(problems))
        self.file = file
        self.problems = problems


class NotAnOecCheckoutError(PermanentError):
    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path} {reason}")
        self.path = path
        self.reason = reason


class NoCatalogueError(PermanentError):
    def __init__(self, failures: dict[str, str]) -> None:
        super().__init__("no catalogue could be read; nothing written")
        self.failures = failures  # catalogue -> why it could not be read


class UnsafeNameError(PermanentError):
    pass


class BrokerUnavailableError(RetryableError):
    pass


class RepositoryBusyError(RetryableError):
    pass
