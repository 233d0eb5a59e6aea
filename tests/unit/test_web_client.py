"""The browser client's own suite (clients/web: vitest) and its strict type check, run from
pytest so that `make test` covers them on a fresh machine.

`make clients/web/node_modules/.installed` installs the pinned packages from the
lock file first (and Node itself where it is missing), like the browser tests'
`make web`. The vitest suite is the spec of the package's core and hooks: the
inbox reducer for every event kind, backoff and resume over a fake transport,
and the React hooks in happy-dom.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CLIENT = ROOT / "clients" / "web"
SUITES = {"inbox.test.ts", "filter.test.ts", "live.test.ts", "react.test.tsx"}

pytestmark = pytest.mark.timeout(900)  # a first run installs the npm packages


def _run(cmd: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def installed() -> None:
    done = _run(["make", "--quiet", "clients/web/node_modules/.installed"], ROOT, 600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]


@pytest.mark.usefixtures("installed")
def test_the_package_type_checks() -> None:
    tsc = _run([str(CLIENT / "node_modules/.bin/tsc"), "--noEmit"], CLIENT, 300)
    assert tsc.returncode == 0, tsc.stdout[-5000:] + tsc.stderr[-3000:]


@pytest.mark.usefixtures("installed")
def test_vitest_suite_passes() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "vitest.json"
        run = _run(
            [
                str(CLIENT / "node_modules/.bin/vitest"),
                "run",
                "--reporter=json",
                f"--outputFile={report}",
            ],
            CLIENT,
            300,
        )
        assert report.exists(), run.stdout[-3000:] + run.stderr[-3000:]
        result = json.loads(report.read_text())
    failures = [
        f"{Path(suite['name']).name} > {test['fullName']}: {test.get('failureMessages')}"
        for suite in result["testResults"]
        for test in suite["assertionResults"]
        if test["status"] != "passed"
    ]
    assert not failures, "\n".join(failures)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert {Path(suite["name"]).name for suite in result["testResults"]} == SUITES
    assert result["numPassedTests"] == result["numTotalTests"] >= 38
    print(f"\nvitest: {result['numPassedTests']} tests passed in clients/web")
