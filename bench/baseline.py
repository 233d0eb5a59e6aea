"""Builds the baseline notifyd of an A/B run: another commit's tree and an interpreter for it.

The tree comes from ``git archive`` (not ``git worktree add``: that would
register a worktree in the repository every engineer shares, and leave it
behind if the bench is killed). It lives in ``.bench-cache/<commit>/`` at
the top of the working tree (gitignored), so rerunning against the same
commit costs nothing; ``rm -rf .bench-cache`` removes them all.

The interpreter is a venv in the same directory, made one of two ways:

- the baseline's ``pyproject.toml`` is byte for byte the working tree's
  (same pinned dependencies): a venv without packages whose one ``.pth``
  file puts the baseline's ``src/`` and ``gen/`` first and this venv's
  site-packages after them. Nothing is installed, so it is ready at once,
  and both sides run on the very same library builds. This venv's own
  ``.pth`` files (the editable install of the working tree among them) are
  not processed there, because that directory is only a path entry, not a
  site directory;
- otherwise a real venv with the baseline installed by pip (its runtime
  dependencies, at its own pins; pip's cache makes that fast).

Either way the baseline is checked before use: its interpreter must import
``notify`` and the generated ``elloloop`` code from the cached copy, never
from the working tree.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

CACHE_DIR = ".bench-cache"
_READY = ".ready"  # written last: a directory without it is a half-built one
_PROBE = (
    "import notify, elloloop.notify.v1.notify_pb2 as pb; print(notify.__file__); print(pb.__file__)"
)


class BaselineError(RuntimeError):
    """The baseline could not be resolved, built, or does not import from its own tree."""


@dataclass(frozen=True, slots=True)
class Tree:
    """One side's notifyd: how to start it, and what it really imports."""

    label: str  # "baseline 1a2b3c4" or "current ..."
    command: tuple[str, ...]  # empty: the notifyd of the running venv
    imports: tuple[str, ...]  # the files of notify and of the generated code it loads
    how: str  # how its interpreter was made
    # NOTIFY_* for this side only, over ``--env`` (``--current-env``: the same
    # code with one setting changed, e.g. a rate limit on against off).
    env: dict[str, str] = field(default_factory=dict)


def _git(*args: str, cwd: Path) -> str:
    try:
        done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    except subprocess.CalledProcessError as exc:
        raise BaselineError(f"git {' '.join(args)}: {exc.stderr.strip()}") from exc
    return done.stdout.strip()


def repo_root(start: Path | None = None) -> Path:
    return Path(_git("rev-parse", "--show-toplevel", cwd=start or Path(__file__).resolve().parent))


def resolve(rev: str, root: Path) -> str:
    """The full commit hash ``rev`` names (a branch, tag, ``HEAD~3``, a short hash ...)."""
    try:
        return _git("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", cwd=root)
    except BaselineError:
        raise BaselineError(f"{rev!r} names no commit in {root}") from None


def _current_site_packages() -> str:
    return sysconfig.get_paths()["purelib"]


def _extract(commit: str, root: Path, into: Path) -> None:
    into.mkdir(parents=True)
    archive = subprocess.Popen(
        ["git", "archive", "--format=tar", commit], cwd=root, stdout=subprocess.PIPE
    )
    assert archive.stdout is not None
    untar = subprocess.run(["tar", "-x", "-C", str(into)], stdin=archive.stdout, check=False)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise BaselineError(f"could not extract {commit} with git archive")


def _shared_venv(home: Path, tree: Path) -> str:
    builder = venv.EnvBuilder(with_pip=False, symlinks=True, clear=True)
    builder.create(home / "venv")
    purelib = Path(
        subprocess.run(
            [
                str(home / "venv" / "bin" / "python"),
                "-c",
                "import sysconfig; print(sysconfig.get_paths()['purelib'])",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    )
    lines = [str(tree / "src"), str(tree / "gen"), _current_site_packages()]
    (purelib / "notify-bench-baseline.pth").write_text("\n".join(lines) + "\n")
    return f"same pyproject.toml: a bare venv sharing {_current_site_packages()}"


def _installed_venv(home: Path, tree: Path, log: Callable[[str], None]) -> str:
    builder = venv.EnvBuilder(with_pip=True, symlinks=True, clear=True)
    builder.create(home / "venv")
    pip = str(home / "venv" / "bin" / "pip")
    log(f"  the baseline's pyproject.toml differs: pip install {tree} (runtime dependencies)")
    done = subprocess.run(
        [pip, "install", "--quiet", "--disable-pip-version-check", str(tree)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise BaselineError(f"pip install of the baseline failed:\n{done.stderr[-2000:]}")
    return "its own pyproject.toml: a venv with the baseline installed by pip"


def _imports(python: str, command_env: dict[str, str]) -> tuple[str, ...]:
    done = subprocess.run(
        [python, "-c", _PROBE], capture_output=True, text=True, env=command_env, check=False
    )
    if done.returncode != 0:
        raise BaselineError(f"{python} cannot import notify:\n{done.stderr[-2000:]}")
    return tuple(done.stdout.split())


def prepare(rev: str, *, root: Path | None = None, log: Callable[[str], None] = print) -> Tree:
    """The baseline ``rev``'s Tree, built into the cache unless it is there already."""
    top = root or repo_root()
    commit = resolve(rev, top)
    home = top / CACHE_DIR / commit
    tree = home / "tree"
    if not (home / _READY).exists():
        log(f"  building the baseline {commit[:12]} in {home}")
        shutil.rmtree(home, ignore_errors=True)
        _extract(commit, top, tree)
        same = (tree / "pyproject.toml").read_bytes() == (top / "pyproject.toml").read_bytes()
        how = _shared_venv(home, tree) if same else _installed_venv(home, tree, log)
        (home / _READY).write_text(how + "\n")
    how = (home / _READY).read_text().strip()
    python = str(home / "venv" / "bin" / "python")
    imports = _imports(python, dict(os.environ))
    strays = [path for path in imports if not Path(path).resolve().is_relative_to(home.resolve())]
    if strays:
        raise BaselineError(f"the baseline imports code from outside {home}: {strays}")
    return Tree(f"baseline {commit[:12]}", (python, "-m", "notify"), imports, how)


def current(root: Path | None = None) -> Tree:
    """The working tree's side: this venv's notifyd, with what it imports, for the record."""
    top = root or repo_root()
    imports = _imports(sys.executable, dict(os.environ))
    strays = [path for path in imports if not Path(path).resolve().is_relative_to(top.resolve())]
    if strays:
        raise BaselineError(f"this venv's notify is not the working tree's ({top}): {strays}")
    return Tree("current (working tree)", (), imports, "this venv")
