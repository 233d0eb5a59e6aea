"""Third-party patches refuse to run on a release they were not written for."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from notify.http import patches


def test_the_pinned_versions_pass() -> None:
    patches.check()


@pytest.mark.parametrize("library", ["hypercorn", "connect-python", "uvicorn", "h2", "hpack"])
def test_a_mismatched_version_is_refused_with_one_line(library: str) -> None:
    import importlib.metadata

    def version_of(name: str) -> str:
        return "99.0.0" if name == library else importlib.metadata.version(name)

    with pytest.raises(patches.PatchError) as refused:
        patches.apply(version_of)
    message = str(refused.value)
    assert "\n" not in message
    assert f"{library} 99.0.0 is installed" in message
    assert "==" in message  # says what to install


def test_notifyd_refuses_to_start_on_a_mismatched_version(tmp_path: Path) -> None:
    """A real start-up: the process prints one line and exits 1, before opening anything."""
    (tmp_path / "sitecustomize.py").write_text(
        textwrap.dedent(
            """
            import importlib.metadata as metadata
            _real = metadata.version
            def version(name):
                return "0.0.1" if name == "hypercorn" else _real(name)
            metadata.version = version
            """
        )
    )
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")]),
        "NOTIFY_AUTH_DEV_MODE": "true",
        "NOTIFY_CLIENT_PORT": "0",
        "NOTIFY_INTERNAL_PORT": "0",
        "NOTIFY_METRICS_PORT": "0",
        "NOTIFY_HOST": "127.0.0.1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "notify"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("notifyd: hypercorn 0.0.1 is installed")
