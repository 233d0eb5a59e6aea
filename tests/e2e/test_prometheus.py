"""A real Prometheus scrapes a real notify server with deploy/'s configuration.

Prometheus comes from Debian's ``prometheus`` package, installed here when it
is missing (the test skips, saying why, only if it cannot be installed). It
runs on loopback with a free port, its storage in a temporary directory, and
the scrape config and alert rules of deploy/prometheus/ with a 1 s interval
and the notify job pointed at the test server. After a known amount of
traffic, its HTTP API must report exactly those counts; every dashboard query
and alert rule must evaluate without error.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from notify import __version__
from tests.support import (
    INTERNAL_SVC,
    INTERNAL_TOKEN,
    JWT_SECRET,
    ServerThread,
    make_jwt,
    notify_body,
    running_server,
)
from tests.unit.test_deploy import (
    ALERTS,
    PROMETHEUS_CONFIG,
    dashboard_exprs,
    free_port,
    grafana_to_promql,
    load_yaml_docs,
)

NOTIFY = f"{INTERNAL_SVC}/Notify"
GET_NOTIFICATIONS = "/elloloop.notify.v1.NotificationClientService/GetNotifications"
JOB = "notify"
WAIT = 30.0  # the longest any one thing below may take to show up
INSTALL_TIMEOUT = 600

# The first run on a fresh machine installs Debian's prometheus package.
pytestmark = pytest.mark.timeout(INSTALL_TIMEOUT + 120)


def prometheus_binary() -> str:
    """The prometheus binary; installs Debian's package when it is missing."""
    found = shutil.which("prometheus")
    if found:
        return found
    if shutil.which("apt-get") is None:
        pytest.skip("prometheus is not installed, and there is no apt-get to install it")
    if os.geteuid() != 0:
        pytest.skip("prometheus is not installed, and installing it needs root")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", "prometheus"]

    def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            argv, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
        )

    result = run(install)
    if result.returncode != 0:  # a new machine has no package lists yet, or stale ones
        run(["apt-get", "update", "-qq"])
        result = run(install)
    found = shutil.which("prometheus")
    if result.returncode != 0 or not found:
        pytest.skip(f"could not install Debian's prometheus package: {result.stderr[-500:]}")
    return found


class Prometheus:
    """A Prometheus process on 127.0.0.1 and a small client for its HTTP API."""

    def __init__(self, binary: str, workdir: Path, config: dict[str, Any]) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config_file = workdir / "prometheus.yml"
        config_file.write_text(yaml.safe_dump(config))
        self.log = workdir / "prometheus.log"
        self._log_file = self.log.open("w")
        self.proc = subprocess.Popen(
            [
                binary,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                f"--web.external-url={self.url}/",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            cwd=workdir,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            # Nothing it talks to is behind a proxy: its only target is loopback.
            env={k: v for k, v in os.environ.items() if "proxy" not in k.lower()},
        )
        self.http = httpx.Client(base_url=self.url, timeout=5, trust_env=False)

    def wait_ready(self) -> None:
        def ready() -> bool:
            try:
                return self.http.get("/-/ready").status_code == 200
            except httpx.TransportError:
                return False

        self.wait_for(ready, "Prometheus to be ready")

    def wait_for(self, check: Callable[[], bool], what: str) -> None:
        """Polls ``check`` (a query) until it holds; fails after WAIT seconds."""
        deadline = time.monotonic() + WAIT
        while not check():
            if self.proc.poll() is not None:
                raise AssertionError(f"prometheus exited {self.proc.returncode}: {self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {WAIT} s waiting for {what}: {self.logs()}")
            time.sleep(0.1)

    def api(self, path: str, **params: str) -> Any:
        response = self.http.get(f"/api/v1/{path}", params=params)
        body = response.json()
        assert response.status_code == 200, body
        assert body["status"] == "success", body
        return body["data"]

    def query(self, promql: str) -> list[dict[str, Any]]:
        data = self.api("query", query=promql)
        assert data["resultType"] == "vector", data
        return list(data["result"])

    def value(self, promql: str) -> float | None:
        """The value of a query that yields at most one series (None when it yields none)."""
        result = self.query(promql)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def logs(self) -> str:
        self._log_file.flush()
        return self.log.read_text()[-2000:]

    def stop(self) -> None:
        self.http.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._log_file.close()


def scrape_config(metrics_port: int) -> dict[str, Any]:
    """deploy/prometheus/prometheus.yml, scraping the test server every second."""
    (config,) = load_yaml_docs(PROMETHEUS_CONFIG)
    config["global"] = {
        "scrape_interval": "1s",
        "scrape_timeout": "1s",
        "evaluation_interval": "1s",
    }
    config["rule_files"] = [str(PROMETHEUS_CONFIG.parent / f) for f in config.get("rule_files", [])]
    (job,) = [j for j in config["scrape_configs"] if j["job_name"] == JOB]
    job["static_configs"] = [{"targets": [f"127.0.0.1:{metrics_port}"]}]
    return dict(config)


@pytest.fixture(scope="module")
def prometheus_bin() -> str:
    return prometheus_binary()


@pytest.fixture
def production_server() -> Iterator[ServerThread]:
    """Real credentials (no dev mode), so a wrong token is a real failure."""
    with running_server(
        dev_mode=False, jwt_secret=JWT_SECRET, internal_token=INTERNAL_TOKEN
    ) as server:
        yield server


@pytest.fixture
def prometheus(
    prometheus_bin: str, production_server: ServerThread, tmp_path: Path
) -> Iterator[Prometheus]:
    prom = Prometheus(prometheus_bin, tmp_path, scrape_config(production_server.ports.metrics))
    try:
        prom.wait_ready()
        yield prom
    finally:
        prom.stop()


def drive_traffic(server: ServerThread) -> None:
    """7 Notify and 3 GetNotifications that succeed, 1 Notify with a wrong token."""
    internal = {"X-Notify-Internal-Token": INTERNAL_TOKEN}
    client = {"Authorization": f"Bearer {make_jwt()}"}
    with httpx.Client(timeout=10, trust_env=False) as http:
        for i in range(7):
            response = http.post(
                server.internal_url(), json=notify_body(f"n-{i}"), headers=internal
            )
            assert response.status_code == 200, response.text
            assert response.json().get("pending") == 1, response.text
        for _ in range(3):
            response = http.post(
                server.client_url("GetNotifications"), json={"limit": 20}, headers=client
            )
            assert response.status_code == 200, response.text
            assert len(response.json()["notifications"]) == 7
        response = http.post(
            server.internal_url(),
            json=notify_body("n-rejected"),
            headers={"X-Notify-Internal-Token": "not-the-token"},
        )
        assert response.status_code == 401, response.text
        assert response.json()["code"] == "unauthenticated"


def test_prometheus_scrapes_what_the_server_did(
    prometheus: Prometheus, production_server: ServerThread
) -> None:
    prometheus.wait_for(
        lambda: prometheus.value(f'up{{job="{JOB}"}}') == 1, "the notify target to be up"
    )
    drive_traffic(production_server)

    requests = f'notify_rpc_requests_total{{job="{JOB}"'
    notify_ok = f'sum({requests}, procedure="{NOTIFY}", code="ok"}})'
    # All 11 calls in one scrape: the counts below come from the same data.
    prometheus.wait_for(
        lambda: prometheus.value(notify_ok) == 7 and prometheus.value(f"sum({requests}}})") == 11,
        "the 7 Notify calls (11 calls in all) to be scraped",
    )

    assert prometheus.value(f'up{{job="{JOB}"}}') == 1
    assert prometheus.value(f'sum({requests}, procedure="{GET_NOTIFICATIONS}", code="ok"}})') == 3
    assert prometheus.value(f'sum({requests}, procedure="{NOTIFY}", code="unauthenticated"}})') == 1
    assert prometheus.value(f'count({requests}, code!~"ok|unauthenticated"}})') is None
    assert prometheus.value(f'sum({requests}, protocol!="connect"}})') is None
    durations = f'notify_rpc_duration_seconds_count{{job="{JOB}", procedure="{NOTIFY}"}}'
    assert prometheus.value(f"sum({durations})") == 8
    stored = prometheus.query(f'notify_notifications_stored_total{{job="{JOB}"}}')
    assert [(s["metric"]["channel"], s["metric"]["status"], s["value"][1]) for s in stored] == [
        ("in_app", "pending", "7")
    ]
    (build,) = prometheus.query(f'notify_build_info{{job="{JOB}"}}')
    assert build["metric"]["version"] == __version__
    assert build["metric"]["driver"] == "memory"
    assert build["value"][1] == "1"


def test_dashboard_queries_and_alert_rules_evaluate(
    prometheus: Prometheus, production_server: ServerThread
) -> None:
    # A series' first sample already holds its count, so rate() is 0 until a
    # later scrape sees it grow: traffic, a scrape, traffic again.
    total = f'sum(notify_rpc_requests_total{{job="{JOB}"}})'
    drive_traffic(production_server)
    prometheus.wait_for(lambda: prometheus.value(total) == 11, "the first calls to be scraped")
    drive_traffic(production_server)
    prometheus.wait_for(lambda: prometheus.value(total) == 22, "the second calls to be scraped")

    for expr in dashboard_exprs():
        prometheus.api("query", query=grafana_to_promql(expr))  # fails on a bad query
    rpc_rate = next(e for e in dashboard_exprs() if e.startswith("sum(rate(notify_rpc_requests"))
    assert (prometheus.value(grafana_to_promql(rpc_rate)) or 0) > 0

    def rules() -> list[dict[str, Any]]:
        groups = prometheus.api("rules")["groups"]
        return [rule for group in groups for rule in group["rules"]]

    prometheus.wait_for(
        lambda: all(rule["health"] != "unknown" for rule in rules()),
        "every alert rule to be evaluated",
    )
    loaded = rules()
    assert sorted(rule["name"] for rule in loaded) == alert_names()
    for rule in loaded:
        assert rule["health"] == "ok", rule
        assert rule["state"] == "inactive", rule  # a healthy server fires nothing


def alert_names() -> list[str]:
    (rules,) = load_yaml_docs(ALERTS)
    return sorted(rule["alert"] for group in rules["groups"] for rule in group["rules"])
