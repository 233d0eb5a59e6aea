"""The A/B bench's baseline: another commit's tree, run by an interpreter that imports only it.

A tiny git repository stands in for the project: two commits whose
``notify`` differ, so the test can tell which tree an interpreter loads.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from bench import baseline

PYPROJECT = '[project]\nname = "notify"\nversion = "0"\n'


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@t", *args],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def write_tree(repo: Path, version: str) -> None:
    (repo / "src" / "notify").mkdir(parents=True, exist_ok=True)
    (repo / "src" / "notify" / "__init__.py").write_text(f"VERSION = {version!r}\n")
    generated = repo / "gen" / "elloloop" / "notify" / "v1"
    generated.mkdir(parents=True, exist_ok=True)
    (generated / "notify_pb2.py").write_text("")


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    (root / "pyproject.toml").write_text(PYPROJECT)
    write_tree(root, "old")
    git(root, "add", ".")
    git(root, "commit", "-qm", "old")
    write_tree(root, "new")
    git(root, "commit", "-qam", "new")
    return root


def version(tree: baseline.Tree) -> str:
    python = tree.command[0]
    return subprocess.run(
        [python, "-c", "import notify; print(notify.VERSION)"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_the_baseline_runs_its_own_commits_code(repo: Path) -> None:
    commit = git(repo, "rev-parse", "HEAD~1")
    tree = baseline.prepare("HEAD~1", root=repo, log=lambda _: None)
    home = repo / baseline.CACHE_DIR / commit
    assert tree.label == f"baseline {commit[:12]}"
    assert tree.command == (str(home / "venv" / "bin" / "python"), "-m", "notify")
    assert tree.imports == (
        str(home / "tree" / "src" / "notify" / "__init__.py"),
        str(home / "tree" / "gen" / "elloloop" / "notify" / "v1" / "notify_pb2.py"),
    )
    assert tree.how.startswith("same pyproject.toml")
    assert version(tree) == "old"
    # The current venv's libraries are there too, after the baseline's own code.
    assert version(baseline.prepare("HEAD", root=repo, log=lambda _: None)) == "new"


def test_a_built_baseline_is_reused_and_a_half_built_one_rebuilt(repo: Path) -> None:
    built: list[str] = []
    baseline.prepare("HEAD~1", root=repo, log=built.append)
    baseline.prepare("HEAD~1", root=repo, log=built.append)
    assert len(built) == 1  # the second call found it ready
    home = repo / baseline.CACHE_DIR / git(repo, "rev-parse", "HEAD~1")
    (home / ".ready").unlink()
    (home / "tree" / "src" / "notify" / "__init__.py").write_text("VERSION = 'tampered'\n")
    tree = baseline.prepare("HEAD~1", root=repo, log=built.append)
    assert len(built) == 2
    assert version(tree) == "old"


def test_an_unknown_revision_is_an_error(repo: Path) -> None:
    with pytest.raises(baseline.BaselineError, match="no-such-rev"):
        baseline.prepare("no-such-rev", root=repo, log=lambda _: None)
