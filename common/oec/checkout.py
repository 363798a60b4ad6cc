"""Is a folder an OEC checkout? Checked before a run, so a wrong path costs one line, not a
run that proposes branches in some other repository or ends in a traceback."""

from __future__ import annotations

import subprocess
from pathlib import Path

from lxml import etree

from common.errors import NotAnOecCheckoutError
from common.oec.tree import parse_system


def check_checkout(path: Path) -> None:
    """Raise NotAnOecCheckoutError unless ``path`` is the top of a git checkout whose HEAD is
    a commit with system files (``systems/*.xml`` whose root is ``<system>``)."""
    if not path.exists():
        raise NotAnOecCheckoutError(path, "does not exist")
    if not path.is_dir():
        raise NotAnOecCheckoutError(path, "is a file, not a directory")
    top = _git(path, "rev-parse", "--show-toplevel")
    if top is None:
        raise NotAnOecCheckoutError(path, "is not a git repository")
    if Path(top.strip()).resolve() != path.resolve():
        raise NotAnOecCheckoutError(path, f"is inside the git checkout {top.strip()}; give that")
    if _git(path, "rev-parse", "--verify", "--quiet", "HEAD^{commit}") is None:
        raise NotAnOecCheckoutError(path, "is a git repository without any commit")
    listing = _git(path, "ls-tree", "-z", "--name-only", "HEAD", "systems/") or ""
    files = sorted(name for name in listing.split("\0") if name.endswith(".xml"))
    if not files:
        raise NotAnOecCheckoutError(
            path, "has no systems/*.xml in its HEAD commit: not an OEC checkout"
        )
    text = _git(path, "cat-file", "blob", f"HEAD:{files[0]}")
    if text is None or not _is_system(text):
        raise NotAnOecCheckoutError(
            path, f"{files[0]} is no OEC system file (its root is not <system>)"
        )


def _is_system(text: str) -> bool:
    try:
        return parse_system(text).tag == "system"
    except etree.XMLSyntaxError:
        return False


def _git(path: Path, *args: str) -> str | None:
    """git's output, or None when git fails (or the folder is no repository)."""
    done = subprocess.run(
        ["git", "-C", str(path), *args], capture_output=True, text=True, check=False
    )
    return done.stdout if done.returncode == 0 else None
