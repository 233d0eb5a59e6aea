"""notifyctl against a real notifyd, run as the user runs it: a separate process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support import (
    INTERNAL_TOKEN,
    JWT_SECRET,
    ServerThread,
    dev_auth,
    make_jwt,
    notify_body,
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


def send_rows(server: ServerThread, user: str, *rows: dict[str, Any]) -> None:
    """Notify over HTTP (quicker than a notifyctl process per row); each row its own id."""
    for index, extra in enumerate(rows):
        body = notify_body(f"{user}-{index}", user, **extra)
        answer = httpx.post(server.internal_url(), json=body)
        assert answer.status_code == 200, answer.text


def rows_by_title(server: ServerThread, user: str, **body: Any) -> dict[str, dict[str, Any]]:
    return {n["title"]: n for n in get_notifications(server, user, **body)["notifications"]}


EVERYTHING = {"filter": {"archived": "ARCHIVE_SCOPE_ALL"}}


def test_mark_every_kind_over_mark_notifications(notifyd: ServerThread) -> None:
    user = "user-marks"
    action = {"id": "logs", "label": "Open logs", "url": "/logs"}
    send_rows(notifyd, user, {"title": "a", "actions": [action]}, {"title": "b"})
    ids = {title: n["id"] for title, n in rows_by_title(notifyd, user).items()}

    seen = ctl_json(notifyd, "mark", "--user", user, "--seen", ids["a"])
    assert seen == {"updated": 1, "counts": {"unread": 2, "unseen": 1, "total": 2}}
    assert rows_by_title(notifyd, user)["a"]["seenAtMs"] != "0"

    ctl_json(notifyd, "mark", "--user", user, ids["a"])  # --read is the default
    assert rows_by_title(notifyd, user)["a"]["status"] == "DELIVERY_STATUS_READ"
    unread = ctl(notifyd, "mark", "--user", user, "--unread", ids["a"])
    assert unread.returncode == 0, unread.stderr
    assert unread.stdout.startswith(f"marked unread: {ids['a']} (1 updated; 2 unread")
    assert rows_by_title(notifyd, user)["a"]["status"] == "DELIVERY_STATUS_PENDING"

    acted = ctl_json(notifyd, "mark", "--user", user, "--action", "logs", ids["a"])
    assert acted["updated"] == 1
    row = rows_by_title(notifyd, user)["a"]
    assert (row["actionId"], row["status"]) == ("logs", "DELIVERY_STATUS_READ")

    archived = ctl_json(notifyd, "mark", "--user", user, "--archive", ids["b"])
    assert archived["counts"] == {"unread": 0, "unseen": 0, "total": 1}
    assert set(rows_by_title(notifyd, user)) == {"a"}
    ctl_json(notifyd, "mark", "--user", user, "--unarchive", ids["b"])
    assert set(rows_by_title(notifyd, user)) == {"a", "b"}

    before = time.time()
    snoozed = ctl_json(notifyd, "mark", "--user", user, "--snooze", "1h", ids["b"])
    assert snoozed["counts"]["total"] == 1
    hidden = rows_by_title(notifyd, user, filter={"snoozed": True})["b"]
    assert before + 3600 <= int(hidden["snoozedUntilMs"]) / 1000 <= time.time() + 3600
    ctl_json(notifyd, "mark", "--user", user, "--unsnooze", ids["b"])
    assert set(rows_by_title(notifyd, user)) == {"a", "b"}

    # A repeat changes nothing and says so; the ids are the user's, so it is no error.
    again = ctl_json(notifyd, "mark", "--user", user, "--unsnooze", ids["b"])
    assert again["updated"] == 0


def test_mark_all_with_a_filter(notifyd: ServerThread) -> None:
    user = "user-mark-all"
    send_rows(
        notifyd,
        user,
        {"title": "deploy", "category": "deploys", "severity": "SEVERITY_ERROR"},
        {"title": "comment", "category": "comments", "tags": ["team"]},
        {"title": "billing", "category": "billing"},
    )
    by_category = ctl_json(notifyd, "mark", "--user", user, "--all", "--category", "deploys")
    assert by_category == {"updated": 1, "counts": {"unread": 2, "unseen": 2, "total": 3}}
    rows = rows_by_title(notifyd, user)
    assert rows["deploy"]["status"] == "DELIVERY_STATUS_READ"
    assert rows["comment"]["status"] == "DELIVERY_STATUS_PENDING"

    by_tag = ctl(notifyd, "mark", "--user", user, "--all", "--tag", "team", "--archive")
    assert by_tag.returncode == 0, by_tag.stderr
    assert by_tag.stdout.startswith("marked archived: all (1 updated; 1 unread, 1 unseen, 2 total)")
    everything = ctl_json(notifyd, "mark", "--user", user, "--all", "--with-archived")
    assert everything["updated"] == 2  # comment (archived) and billing; deploy was read
    assert {n["status"] for n in rows_by_title(notifyd, user, **EVERYTHING).values()} == {
        "DELIVERY_STATUS_READ"
    }


def test_delete_by_ids_and_by_filter(notifyd: ServerThread) -> None:
    user = "user-delete"
    send_rows(
        notifyd,
        user,
        {"title": "one", "category": "a"},
        {"title": "two", "category": "b"},
        {"title": "three", "category": "b"},
    )
    ids = {title: n["id"] for title, n in rows_by_title(notifyd, user).items()}
    gone = ctl(notifyd, "delete", "--user", user, ids["one"])
    assert gone.returncode == 0, gone.stderr
    assert gone.stdout.startswith(f"deleted: {ids['one']} (1 deleted; 2 unread, 2 unseen, 2 total)")
    by_filter = ctl_json(notifyd, "delete", "--user", user, "--all", "--category", "b")
    assert by_filter == {"deleted": 2, "counts": {"unread": 0, "unseen": 0, "total": 0}}
    assert get_notifications(notifyd, user, **EVERYTHING).get("notifications", []) == []
    # Deleting it again: the id is no longer the user's.
    again = ctl(notifyd, "delete", "--user", user, ids["one"], "--json")
    assert again.returncode == 4
    assert json.loads(again.stdout) == {
        "deleted": 0,
        "counts": {"unread": 0, "unseen": 0, "total": 0},
    }
    assert json.loads(again.stderr)["error"]["code"] == "not_found"


def test_inbox_filters_and_counts(notifyd: ServerThread) -> None:
    user = "user-filters"
    send_rows(
        notifyd,
        user,
        {"title": "err", "severity": "SEVERITY_ERROR", "category": "deploys", "tags": ["prod"]},
        {"title": "info", "severity": "SEVERITY_INFO", "category": "comments"},
        {"title": "old", "category": "comments"},
        {
            "title": "mail",
            "channels": ["DELIVERY_CHANNEL_EMAIL"],
            "addresses": {user: {"byChannel": {"email": "u@example.com"}}},
        },
    )
    ids = {title: n["id"] for title, n in rows_by_title(notifyd, user).items()}
    ctl_json(notifyd, "mark", "--user", user, "--archive", ids["old"])
    ctl_json(notifyd, "mark", "--user", user, ids["info"])

    def titles(*flags: str) -> list[str]:
        listed = ctl_json(notifyd, "inbox", "--user", user, *flags)
        return [n["title"] for n in listed["notifications"]]

    assert titles() == ["info", "err"]
    assert titles("--category", "comments") == ["info"]
    assert titles("--category", "comments", "--with-archived") == ["old", "info"]
    assert titles("--archived") == ["old"]
    assert titles("--tag", "prod") == ["err"]
    assert titles("--severity", "error", "--severity", "info") == ["info", "err"]
    assert titles("--unread") == ["err"]
    assert titles("--read-only") == ["info"]
    assert titles("--channel", "email") == ["mail"]
    assert titles("--snoozed") == []
    ctl_json(notifyd, "mark", "--user", user, "--snooze", "2d", ids["err"])
    assert titles("--snoozed") == ["err"]

    listed = ctl_json(notifyd, "inbox", "--user", user)
    assert listed["counts"] == {"unread": 0, "unseen": 0, "total": 1}
    table = ctl(notifyd, "inbox", "--user", user)
    assert "1 shown, 0 unread, 0 unseen, 1 total" in table.stderr
    only_ids = ctl(notifyd, "inbox", "--user", user, "--with-archived", "--ids")
    assert only_ids.stdout.split() == [ids["old"], ids["info"]]

    assert ctl_json(notifyd, "counts", "--user", user) == {"unread": 0, "unseen": 0, "total": 1}
    archived = ctl(notifyd, "counts", "--user", user, "--archived")
    assert archived.stdout.strip() == "1 unread, 1 unseen, 1 total"


def test_prefs_get_set_and_tenant_defaults(notifyd: ServerThread) -> None:
    user, tenant = "user-prefs", "tenant-prefs"
    who = ("--user", user, "--tenant", tenant)
    empty = ctl_json(notifyd, "prefs", "get", *who)
    assert empty == {"rules": [], "tenantDefaults": [], "requiredCategories": []}

    changed = ctl_json(notifyd, "prefs", "set", *who, "marketing=off", "*/email=off")
    assert changed["rules"] == [
        {"category": "", "channel": "DELIVERY_CHANNEL_EMAIL", "enabled": False},
        {"category": "marketing", "channel": "DELIVERY_CHANNEL_UNSPECIFIED", "enabled": False},
    ]
    skipped = httpx.post(
        notifyd.internal_url(),
        json=notify_body("promo-1", user, tenant=tenant, category="marketing"),
    ).json()
    assert skipped == {"delivered": 0, "pending": 0, "failed": 0, "skipped": 1}
    sent = ctl(notifyd, "send", "--tenant", tenant, "--user", user, "--title", "x",
               "--category", "marketing", "--id", "promo-cli")  # fmt: skip
    assert sent.stdout.strip() == (
        "sent promo-cli to 1 user: delivered 0, pending 0, failed 0, skipped 1"
    )
    as_json = ctl_json(notifyd, "send", "--tenant", tenant, "--user", user, "--title", "x",
                       "--category", "marketing", "--id", "promo-cli")  # fmt: skip
    assert as_json == {"notificationId": "promo-cli", "delivered": 0, "pending": 0, "failed": 0,
                       "skipped": 1}  # fmt: skip

    tenant_set = ctl(
        notifyd, "prefs", "set-tenant", "--tenant", tenant, "digest=off", "--required", "marketing"
    )
    assert tenant_set.returncode == 0, tenant_set.stderr
    assert tenant_set.stdout.strip() == f"tenant {tenant}: defaults digest=off; required marketing"
    shown = ctl(notifyd, "prefs", "get", *who)
    assert shown.returncode == 0, shown.stderr
    lines = [line.split() for line in shown.stdout.splitlines()]
    assert lines == [
        ["WHOSE", "RULE"],
        ["user", "*/email=off"],
        ["user", "marketing=off"],
        ["tenant", "digest=off"],
        ["required", "marketing"],
    ]
    # Required now: the user's rule no longer applies.
    delivered = httpx.post(
        notifyd.internal_url(),
        json=notify_body("promo-2", user, tenant=tenant, category="marketing"),
    ).json()
    assert delivered == {"delivered": 0, "pending": 1, "failed": 0}

    cleared = ctl_json(notifyd, "prefs", "set", *who, "--replace")
    assert cleared["rules"] == []
    assert cleared["requiredCategories"] == ["marketing"]


def test_inbox_command_exit_codes(notifyd: ServerThread) -> None:
    user = "user-exit"
    send_rows(notifyd, user, {"title": "x", "actions": [{"id": "go", "label": "Go"}]})
    row_id = rows_by_title(notifyd, user)["x"]["id"]
    assert ctl(notifyd, "mark", "--user", user).returncode == 2  # neither ids nor --all
    assert ctl(notifyd, "mark", "--user", user, "--all", row_id).returncode == 2
    assert ctl(notifyd, "mark", "--user", user, row_id, "--category", "a").returncode == 2
    assert ctl(notifyd, "mark", "--user", user, "--snooze", "later", row_id).returncode == 2
    assert ctl(notifyd, "delete", "--user", user).returncode == 2
    assert ctl(notifyd, "inbox", "--user", user, "--unread", "--read-only").returncode == 2
    assert ctl(notifyd, "prefs", "set", "--user", user, "marketing=maybe").returncode == 2
    assert ctl(notifyd, "prefs", "set", "--user", user, "a/fax=on").returncode == 2
    assert ctl(notifyd, "prefs", "set", "--user", user).returncode == 2
    # The server's refusals: an action the row does not have, a category it does not allow.
    wrong = ctl(notifyd, "mark", "--user", user, "--action", "nope", row_id, "--json")
    assert wrong.returncode == 2
    assert json.loads(wrong.stderr)["error"]["code"] == "invalid_argument"
    assert ctl(notifyd, "prefs", "set", "--user", user, "Bad Category=on").returncode == 2
    # One known and one unknown id: the known one is marked, and the exit says not found.
    mixed = ctl(notifyd, "mark", "--user", user, row_id, "no-such-id")
    assert mixed.returncode == 4
    assert "marked read" in mixed.stdout
    assert rows_by_title(notifyd, user)["x"]["status"] == "DELIVERY_STATUS_READ"


def test_vapid_keys_make_a_pair_the_server_accepts(notifyd: ServerThread) -> None:
    made = ctl_json(notifyd, "vapid-keys")
    again = ctl_json(notifyd, "vapid-keys")
    assert made["privateKey"] != again["privateKey"]  # a new pair every time
    # notifyd reads the private key and derives the same public key from it.
    derived = subprocess.run(
        [str(Path(sys.executable).with_name("notifyd")), "vapid-keys", "--public"],
        capture_output=True,
        text=True,
        env={**os.environ, "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY": made["privateKey"]},
        timeout=60,
    )
    assert derived.returncode == 0, derived.stderr
    assert derived.stdout.strip() == made["publicKey"]
    text = ctl(notifyd, "vapid-keys")
    assert text.returncode == 0
    lines = [line for line in text.stdout.splitlines() if not line.startswith("#")]
    assert [line.split("=", 1)[0] for line in lines] == [
        "NOTIFY_WEBPUSH_VAPID_PRIVATE_KEY",
        "VAPID_PUBLIC_KEY",
    ]
