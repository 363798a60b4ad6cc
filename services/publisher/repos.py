"""The publisher's own clone of the fork: remotes, fetch, fork sync, one push per run.

One bare repository under the data directory, with the fork as ``origin`` and OEC as
``upstream``. Its ``refs/heads/oec-sync/*`` mirror the fork after every fetch (pruned), so
``common.gitrepo`` and ``common.gitwrite`` (tips, branch writes) work on it unchanged, and
the fork, never this clone, is the truth about what is proposed.

The token reaches git only through the environment of the git process (a credential helper
that reads it from a variable): never a remote URL, a config file or a command line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pydantic import SecretStr

from common.errors import GitError
from common.gitrepo import AUTHOR, BRANCH_PREFIX, git, run_git, tree_entries

OUR_EMAIL = AUTHOR.split("<", 1)[1].rstrip(">")
# Seconds a fetch or push may take before git is killed (a first fetch of OEC is ~100 MB).
GIT_TIMEOUT = 900
_TOKEN_VARIABLE = "OECSYNC_GIT_TOKEN"
_CREDENTIAL_HELPER = (
    '!f() { test "$1" = get || exit 0; echo username=x-access-token; '
    f'echo "password=${_TOKEN_VARIABLE}"; }}; f'
)


def git_environment(token: SecretStr | None) -> dict[str, str]:
    """Environment for a git process: no prompts, and the token only through a helper."""
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if token is not None:
        env.update(
            {
                # An empty helper first resets any helper of the user's or system's config.
                "GIT_CONFIG_COUNT": "2",
                "GIT_CONFIG_KEY_0": "credential.helper",
                "GIT_CONFIG_VALUE_0": "",
                "GIT_CONFIG_KEY_1": "credential.helper",
                "GIT_CONFIG_VALUE_1": _CREDENTIAL_HELPER,
                _TOKEN_VARIABLE: token.get_secret_value(),
            }
        )
    return env


class ForkState(StrEnum):
    IN_SYNC = "in sync"
    FAST_FORWARD = "behind upstream"  # a plain push brings it up to date
    DIVERGED = "diverged"  # commits upstream lacks: refused, reported
    SYNCED = "synced"  # fast-forwarded by this run


@dataclass
class ForkSync:
    state: ForkState
    branch: str  # the fork's default branch
    fork_head: str | None
    upstream_head: str
    error: str | None = None


@dataclass(frozen=True)
class Tip:
    """A branch on the fork: its commit, parents, and who wrote it."""

    sha: str
    parents: tuple[str, ...]
    author: str
    committer: str

    @property
    def ours(self) -> bool:
        """Written by OEC Sync alone: nobody has added to or amended the commit."""
        return self.author == OUR_EMAIL and self.committer == OUR_EMAIL and len(self.parents) == 1


@dataclass(frozen=True)
class RefUpdate:
    """Move ``branch`` on the fork to ``new`` (None deletes it) if it is still at ``expected``
    (None: if it does not exist)."""

    branch: str
    new: str | None
    expected: str | None


class ForkClone:
    """A bare clone under ``path`` with remotes ``origin`` (fork) and ``upstream`` (OEC)."""

    def __init__(
        self, path: Path, fork_url: str, upstream_url: str, token: SecretStr | None = None
    ) -> None:
        self.path = path
        self.fork_url = fork_url
        self.upstream_url = upstream_url
        self._env = git_environment(token)
        self._opened = False
        self._files: dict[str, dict[str, str] | None] = {}

    def _open(self) -> None:
        """Make the bare clone if there is none, and point its remotes at the right URLs."""
        if self._opened:
            return
        if not (self.path / "HEAD").exists():
            self.path.mkdir(parents=True, exist_ok=True)
            git(self.path, "init", "--quiet", "--bare")
        remotes = set(git(self.path, "remote").split())
        for name, url in (("origin", self.fork_url), ("upstream", self.upstream_url)):
            if name not in remotes:
                git(self.path, "remote", "add", name, url)
            elif git(self.path, "config", "--get", f"remote.{name}.url").strip() != url:
                git(self.path, "remote", "set-url", name, url)
        self._opened = True

    def _git(self, *args: str) -> tuple[int, str, str]:
        """git in the clone with the token's environment: (exit status, stdout, stderr)."""
        self._open()
        # The C locale: push --porcelain and git's messages are parsed and reported as is.
        env = {**self._env, "LANGUAGE": "C", "LC_ALL": "C"}
        done = run_git(self.path, *args, env=env, timeout=GIT_TIMEOUT)
        return done.returncode, done.stdout.decode(), done.stderr.decode(errors="replace")

    def _checked(self, *args: str) -> str:
        status, out, err = self._git(*args)
        if status != 0:
            raise GitError(args[0], status, err)
        return out

    def fetch(self, upstream_branch: str, fork_branch: str) -> tuple[str, str | None]:
        """Bring upstream's default branch and the fork's branches here.

        Returns (upstream head, fork default head or None for an empty fork).
        """
        self._checked(
            "fetch",
            "--no-tags",
            "--prune",
            "upstream",
            f"+refs/heads/{upstream_branch}:refs/remotes/upstream/{upstream_branch}",
        )
        # Fetching straight into refs/heads/oec-sync/* (forced, pruned) makes the local
        # branches an exact mirror of the fork: a push that failed last run is undone here.
        # The remote-tracking copy is what every push's lease expects to find on the fork.
        self._checked(
            "fetch",
            "--no-tags",
            "--prune",
            "origin",
            f"+refs/heads/{fork_branch}:refs/remotes/origin/{fork_branch}",
            f"+refs/heads/{BRANCH_PREFIX}*:refs/heads/{BRANCH_PREFIX}*",
            f"+refs/heads/{BRANCH_PREFIX}*:refs/remotes/origin/{BRANCH_PREFIX}*",
        )
        upstream = self.resolve(f"refs/remotes/upstream/{upstream_branch}")
        assert upstream is not None
        return upstream, self.resolve(f"refs/remotes/origin/{fork_branch}")

    def resolve(self, ref: str) -> str | None:
        status, out, _ = self._git("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}")
        return out.strip() if status == 0 else None

    def is_ancestor(self, older: str, newer: str) -> bool:
        status, _, _ = self._git("merge-base", "--is-ancestor", older, newer)
        return status == 0

    def fork_sync(self, fork_branch: str, fork_head: str | None, upstream_head: str) -> ForkSync:
        """Where the fork's default branch stands against upstream's (no change made)."""
        if fork_head == upstream_head:
            state = ForkState.IN_SYNC
        elif fork_head is None or self.is_ancestor(fork_head, upstream_head):
            state = ForkState.FAST_FORWARD
        else:
            state = ForkState.DIVERGED
        return ForkSync(state, fork_branch, fork_head, upstream_head)

    def sync_fork(self, sync: ForkSync) -> ForkSync:
        """Fast-forward the fork's default branch to upstream; never forces."""
        if sync.state is not ForkState.FAST_FORWARD:
            return sync
        status, _, err = self._git(
            "push", "--porcelain", "origin", f"{sync.upstream_head}:refs/heads/{sync.branch}"
        )
        if status != 0:
            sync.error = err.strip() or f"git push exited {status}"
            return sync
        sync.state = ForkState.SYNCED
        sync.fork_head = sync.upstream_head
        return sync

    def tips(self) -> dict[str, Tip]:
        """Every ``oec-sync/*`` branch of the fork (as of the last fetch), by branch name."""
        fmt = "%(refname)%00%(objectname)%00%(parent)%00%(authoremail)%00%(committeremail)"
        out = git(self.path, "for-each-ref", f"--format={fmt}", f"refs/heads/{BRANCH_PREFIX}")
        found: dict[str, Tip] = {}
        for line in out.splitlines():
            ref, sha, parents, author, committer = line.split("\x00")
            found[ref.removeprefix("refs/heads/")] = Tip(
                sha, tuple(parents.split()), author.strip("<>"), committer.strip("<>")
            )
        return found

    def files_at(self, commit: str) -> dict[str, str] | None:
        """path -> blob of every file in ``commit`` (None if the commit is unknown here).

        One ``ls-tree`` per commit: looking files up one by one would inflate and scan
        OEC's 4,000-entry ``systems`` tree once per file.
        """
        if commit not in self._files:
            entries = tree_entries(self.path, commit) if commit else None
            self._files[commit] = (
                {path: oid for path, (_, oid) in entries.items()} if entries is not None else None
            )
        return self._files[commit]

    def changes(
        self, commits: Iterable[str]
    ) -> dict[str, dict[str, tuple[str | None, str | None]]]:
        """What each commit changed against its parent: path -> (old blob, new blob).

        One ``git diff-tree --stdin`` for all of them; None stands for "no such file".
        """
        query = "".join(f"{c}\n" for c in commits)
        if not query:
            return {}
        out = git(
            self.path, "diff-tree", "--stdin", "-r", "-z", "--no-renames", input=query.encode()
        )
        found: dict[str, dict[str, tuple[str | None, str | None]]] = {}
        current: dict[str, tuple[str | None, str | None]] = {}
        tokens = iter(out.split("\0"))
        for token in tokens:
            if token.startswith(":"):
                _, _, old, new, _ = token[1:].split(" ")
                path = next(tokens)
                current[path] = (
                    None if set(old) == {"0"} else old,
                    None if set(new) == {"0"} else new,
                )
            elif token:
                current = found.setdefault(token, {})
        return found

    def push(self, updates: list[RefUpdate]) -> dict[str, str | None]:
        """Send the written branches and the deletions in ``updates`` to the fork, one push.

        The branches to update must already be written locally (``new`` is their local
        commit). Every ref carries a lease: it moves only if the fork still has what the last
        fetch saw (``expected``), so a concurrent change is never overwritten. Returns
        branch -> None (done) or the reason it was refused; one refused ref does not stop
        the others.
        """
        if not updates:
            return {}
        deletions = [u for u in updates if u.new is None]
        if deletions:
            # A deleted branch must not be pushed back by the pattern below.
            stdin = "".join(f"delete refs/heads/{u.branch}\n" for u in deletions)
            git(self.path, "update-ref", "--stdin", input=stdin.encode("utf-8"))
        # One pattern refspec instead of one refspec per branch: git matches explicit refspecs
        # pairwise (1,000 branches cost ~1.3 s of CPU before sending a byte). Unchanged
        # branches equal the fork's and are no-ops; the bare --force-with-lease expects each
        # updated ref at its remote-tracking value (or absent), the explicit ones the
        # deletions' commits.
        args = ["push", "--porcelain", "--force-with-lease"]
        args += [f"--force-with-lease=refs/heads/{u.branch}:{u.expected or ''}" for u in deletions]
        refspecs = [f":refs/heads/{u.branch}" for u in deletions]
        if len(deletions) < len(updates):
            refspecs.append(f"refs/heads/{BRANCH_PREFIX}*:refs/heads/{BRANCH_PREFIX}*")
        status, out, err = self._git(*args, "origin", *refspecs)
        reported: dict[str, tuple[str, str]] = {}
        for line in out.splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and ":" in parts[1]:
                reported[parts[1].rsplit(":", 1)[1]] = (parts[0], parts[2])
        results: dict[str, str | None] = {}
        for u in updates:
            flag, summary = reported.get(f"refs/heads/{u.branch}", ("", ""))
            if flag in {" ", "+", "-", "*", "="}:
                results[u.branch] = None
            elif flag == "!":
                results[u.branch] = f"push refused: {summary}"
            else:
                results[u.branch] = f"push failed (exit {status}): {err.strip()[-500:]}"
        return results


def is_git_error(exc: BaseException) -> bool:
    return isinstance(exc, GitError | OSError)
