"""notifyctl against a real notifyd, run as the user runs it: a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support import (
    INTERNAL_TOKEN,
    JWT_SECRET,
    ServerThread,
    dev_auth,
    make_jwt,
    running_server,
)

NOTIFYCTL = [sys.executable, "-m", "notify_client.cli.main"]


def env_for(server: ServerThread) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    env.update(
        NOTIFY_INTERNAL_URL=f"http://127.0.0.1:{server.ports.internal}",
        NOTIFY_CLIENT_URL=f"http://127.0.0.1:{server.ports.client}",
        NOTIFY_METRICS_URL=f"http://127.0.0.1:{server.ports.metrics}",
        COLUMNS="200",
    )
    return env


def ctl(
    server: ServerThread, *args: str, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NOTIFYCTL, *args],
        input=stdin,
        capture_output=True,
        text=True,
        env=env_for(server),
        timeout=60,
    )


def ctl_json(server: ServerThread, *args: str, stdin: str | None = None) -> dict[str, Any]:
    done = ctl(server, *args, "--json", stdin=stdin)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture(scope="module")
def notifyd() -> Iterator[ServerThread]:
    with running_server() as server:
        yield server


def get_notifications(server: ServerThread, user: str, **body: Any) -> dict[str, Any]:
    answer = httpx.post(server.client_url("GetNotifications"), headers=dev_auth(user), json=body)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def start_tail(server: ServerThread, *args: str) -> subprocess.Popen[str]:
    tail = subprocess.Popen(
        [*NOTIFYCTL, "tail", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env_for(server),
    )
    assert tail.stderr is not None
    # The stream is open (handshake received) once tail says so.
    assert "listening" in tail.stderr.readline()
    return tail


def finish(tail: subprocess.Popen[str]) -> tuple[int, str]:
    try:
        out, _ = tail.communicate(timeout=30)
    finally:
        tail.kill()
    return tail.returncode, out


def test_send_then_tail_sees_it(notifyd: ServerThread) -> None:
    tail = start_tail(notifyd, "--user", "user-tail", "--count", "1")
    sent = ctl(
        notifyd,
        "send",
        "--tenant", "acme",
        "--user", "user-tail",
        "--title", "Deploy finished",
        "--body", "api v2 is live",
        "--subject-ref", "deploy:7",
        "--severity", "success",
        "--category", "deploys",
        "--action", "id=open,label=Open,url=/deploys/7,primary",
        "--data", '{"build": 7}',
        "--tag", "ops",
        "--expires-in", "2h",
        "--collapse-key", "deploy",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "delivered 1, pending 0, failed 0" in sent.stdout
    code, out = finish(tail)
    assert code == 0
    assert "Deploy finished - api v2 is live" in out
    assert "deploy:7" in out


def test_tail_json_prints_raw_events(notifyd: ServerThread) -> None:
    tail = start_tail(notifyd, "--user", "user-tail-json", "--count", "1", "--json")
    result = ctl_json(
        notifyd, "send", "--tenant", "acme", "--user", "user-tail-json", "--title", "x"
    )
    assert result["delivered"] == 1
    code, out = finish(tail)
    assert code == 0
    handshake, *rest = (json.loads(line) for line in out.splitlines())
    assert handshake["sessionId"]
    assert "heartbeat" in handshake
    # Raw means every event; a heartbeat or the inbox's counts may come between, the
    # last is the notification.
    assert all("heartbeat" in e or "counts" in e for e in rest[:-1])
    event = rest[-1]
    assert event["notification"]["notification"]["notificationId"] == result["notificationId"]
    assert event["notification"]["resumeToken"]


def test_send_json_from_stdin(notifyd: ServerThread) -> None:
    body = {
        "tenantId": "acme",
        "notificationId": "n-stdin-1",
        "userIds": ["user-stdin"],
        "channels": ["DELIVERY_CHANNEL_IN_APP"],
        "subjectRef": "task:42",
        "title": "New comment",
        "body": "Bob commented on Task 42",
    }
    result = ctl_json(notifyd, "send", "--stdin", stdin=json.dumps(body))
    assert result == {"notificationId": "n-stdin-1", "delivered": 0, "pending": 1, "failed": 0}
    [row] = get_notifications(notifyd, "user-stdin")["notifications"]
    assert row["notificationId"] == "n-stdin-1"
    # Without an id, one is made.
    del body["notificationId"]
    made = ctl_json(notifyd, "send", "--stdin", stdin=json.dumps(body))
    assert len(made["notificationId"]) == 32


def test_inbox_and_mark_change_what_get_notifications_returns(notifyd: ServerThread) -> None:
    user = "user-inbox"
    for title in ("first", "second", "third"):
        ctl_json(notifyd, "send", "--tenant", "acme", "--user", user, "--title", title)
    listed = ctl_json(notifyd, "inbox", "--user", user)
    assert [n["title"] for n in listed["notifications"]] == ["third", "second", "first"]
    assert listed["unreadCount"] == 3
    second = listed["notifications"][1]["id"]

    marked = ctl(notifyd, "mark", "--user", user, second)
    assert marked.returncode == 0, marked.stderr
    assert f"marked read: {second}" in marked.stdout

    after = get_notifications(notifyd, user)
    assert after["unreadCount"] == 2
    status = {n["id"]: n["status"] for n in after["notifications"]}
    assert status[second] == "DELIVERY_STATUS_READ"
    unread = ctl_json(notifyd, "inbox", "--user", user, "--unread")
    assert [n["title"] for n in unread["notifications"]] == ["third", "first"]

    table = ctl(notifyd, "inbox", "--user", user)
    assert table.returncode == 0
    assert "TITLE" in table.stdout
    assert "second" in table.stdout
    assert "read" in table.stdout
    assert "3 shown, 2 unread" in table.stderr


def test_inbox_pages(notifyd: ServerThread) -> None:
    user = "user-pages"
    for i in range(3):
        ctl_json(notifyd, "send", "--tenant", "acme", "--user", user, "--title", f"p{i}")
    page = ctl_json(notifyd, "inbox", "--user", user, "--limit", "2")
    assert len(page["notifications"]) == 2
    assert page["nextCursor"]
    rest = ctl_json(
        notifyd, "inbox", "--user", user, "--limit", "2", "--cursor", page["nextCursor"]
    )
    assert [n["title"] for n in rest["notifications"]] == ["p0"]
    everything = ctl_json(notifyd, "inbox", "--user", user, "--limit", "2", "--all")
    assert [n["title"] for n in everything["notifications"]] == ["p2", "p1", "p0"]
    assert "nextCursor" not in everything


def test_exit_codes(notifyd: ServerThread) -> None:
    unknown = ctl(notifyd, "mark", "--user", "user-x", "no-such-id", "--json")
    assert unknown.returncode == 4
    assert json.loads(unknown.stderr)["error"]["code"] == "not_found"
    assert ctl(notifyd, "send", "--tenant", "acme").returncode == 2
    assert ctl(notifyd, "send", "--stdin", stdin="{not json").returncode == 2
    assert ctl(notifyd, "send", "--stdin", "--title", "x", stdin="{}").returncode == 2
    assert ctl(notifyd, "send", "--expires-in", "soon").returncode == 2
    # The server's invalid_argument (a blank user id) is a usage error too.
    blank = ctl(notifyd, "send", "--tenant", "acme", "--user", " ", "--title", "x")
    assert blank.returncode == 2
    assert "invalid_argument" in blank.stderr


def test_unauthenticated_is_exit_3() -> None:
    with running_server(
        dev_mode=False, jwt_secret=JWT_SECRET, internal_token=INTERNAL_TOKEN
    ) as secured:
        assert ctl(secured, "inbox", "--user", "user-alice").returncode == 3
        assert (
            ctl(secured, "send", "--tenant", "acme", "--user", "u", "--title", "x").returncode == 3
        )
        token = make_jwt(sub="user-jwt")
        ok = ctl(secured, "inbox", "--token", token, "--json")
        assert ok.returncode == 0, ok.stderr
        sent = ctl(
            secured,
            "send", "--tenant", "acme", "--user", "user-jwt", "--title", "x",
            "--internal-token", INTERNAL_TOKEN,
        )  # fmt: skip
        assert sent.returncode == 0, sent.stderr


def test_health(notifyd: ServerThread) -> None:
    ctl_json(notifyd, "send", "--tenant", "acme", "--user", "user-health", "--title", "x")
    report = ctl_json(notifyd, "health")
    assert report["ready"] is True
    assert report["status"] == "ready"
    assert report["driver"] == "memory"
    assert report["version"]
    assert report["rpcRequests"] >= 1
    assert report["notificationsStored"] >= 1
    text = ctl(notifyd, "health")
    assert text.returncode == 0
    assert text.stdout.startswith("ready     ready")
    down = subprocess.run(
        [*NOTIFYCTL, "health", "--metrics-url", "http://127.0.0.1:9"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert down.returncode == 1
    assert "cannot reach" in down.stderr
