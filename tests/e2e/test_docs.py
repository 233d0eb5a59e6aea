"""The docs run: every block marked runnable in README.md and docs/*.md, against a real notifyd.

The convention (docs/README.md, "Docs that run"):

- a fenced block whose info string is ``sh runnable`` is run with bash;
- the fenced block right after it (only blank lines between) with the info
  string ``text output`` is what it must print, stdout and stderr together;
  ``...`` in it stands for any text, none included, across lines too; a
  runnable block without one must only succeed;
- the blocks of one file run in order in one bash session (``set -eo
  pipefail``, so a failing command fails the file; shell variables carry from
  block to block) in a fresh temporary directory, against one fresh notifyd
  (memory store, dev auth) on free ports: ``localhost:8080``, ``:8081`` and
  ``:9090`` in a block are rewritten to its client, internal and metrics
  ports, and ``NOTIFY_CLIENT_URL``, ``NOTIFY_INTERNAL_URL`` and
  ``NOTIFY_METRICS_URL`` point notifyctl at them.

The generated references are checked here too: docs/configuration.md and
docs/api.md must be what the generators write now (so a test run catches a
stale page even without ``tools/check-gen``), and every element of the proto
must carry a comment, since the comments are the API reference.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import queue
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import ModuleType

import pytest
from google.protobuf import descriptor_pb2

from tests.support import ServerThread, running_server

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
RUNNABLE, OUTPUT = "sh runnable", "text output"
WILDCARD = "..."
BLOCK_TIMEOUT = 60.0
# The ports the docs show, by the server port each stands for.
DOC_PORTS = {"8080": "client", "8081": "internal", "9090": "metrics"}
_FENCE = re.compile(r"^(?P<indent> {0,3})(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")


@dataclass(frozen=True)
class Block:
    """A fenced block: its info string, text and where it starts (1-based line)."""

    info: str
    text: str
    line: int


@dataclass(frozen=True)
class Example:
    """A runnable block and the output it must print (None: only success is checked)."""

    command: Block
    expected: Block | None


def fenced_blocks(markdown: str) -> list[tuple[Block, int]]:
    """Every fenced block, with the index (0-based) of the line after its closing fence."""
    lines = markdown.split("\n")
    found: list[tuple[Block, int]] = []
    i = 0
    while i < len(lines):
        opening = _FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        fence, info = opening["fence"], opening["info"].strip()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not (
            lines[j].strip().startswith(fence) and lines[j].strip().strip(fence[0]) == ""
        ):
            body.append(lines[j])
            j += 1
        found.append((Block(info, "\n".join(body), i + 1), j + 1))
        i = j + 1
    return found


def examples(markdown: str) -> list[Example]:
    """The runnable blocks in order, each with the output block that follows it."""
    lines = markdown.split("\n")
    blocks = fenced_blocks(markdown)
    found: list[Example] = []
    for index, (block, after) in enumerate(blocks):
        if block.info == OUTPUT:
            previous = found[-1].expected if found else None
            if previous is not block:
                raise ValueError(f"line {block.line}: an output block must follow a runnable one")
            continue
        if block.info != RUNNABLE:
            continue
        expected = None
        if index + 1 < len(blocks):
            following, _ = blocks[index + 1]
            between = lines[after : following.line - 1]
            if following.info == OUTPUT and all(not line.strip() for line in between):
                expected = following
        found.append(Example(block, expected))
    return found


def _normalise(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n")).strip("\n")


def matches(expected: str, actual: str) -> bool:
    """Whether ``actual`` is ``expected`` with each ``...`` standing for any text."""
    pattern = "[\\s\\S]*?".join(re.escape(part) for part in _normalise(expected).split(WILDCARD))
    return re.fullmatch(pattern, _normalise(actual)) is not None


def with_ports(text: str, server: ServerThread) -> str:
    """The docs' ports (localhost:8080, :8081, :9090) as the test server's."""
    for shown, port in DOC_PORTS.items():
        text = text.replace(f"localhost:{shown}", f"127.0.0.1:{getattr(server.ports, port)}")
    return text


class Session:
    """One bash process running blocks one after another, output captured per block."""

    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        self._workdir = workdir
        self._sentinel = "--block-done-" + secrets.token_hex(8)
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=env,
            text=True,
            start_new_session=True,  # its background jobs go with it on close
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._send("set -eo pipefail\n")
        self._count = 0

    def _read(self) -> None:
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._lines.put(line)
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(text)
        self._process.stdin.flush()

    def run(self, script: str) -> tuple[bool, str]:
        """(finished, output): finished is False when the block failed the session."""
        self._count += 1
        path = self._workdir / f".block-{self._count}.sh"
        path.write_text(script + "\n")
        # Sourced, so variables carry over; stdin is /dev/null so no command eats the script.
        self._send(f"source {path.name} </dev/null 2>&1\nprintf '\\n%s\\n' {self._sentinel}\n")
        output: list[str] = []
        while True:
            try:
                line = self._lines.get(timeout=BLOCK_TIMEOUT)
            except queue.Empty:
                return False, "".join(output) + f"\n(no end after {BLOCK_TIMEOUT:.0f} s)"
            if line is None:
                self._process.wait(timeout=10)
                return False, "".join(output) + f"\n(bash exited {self._process.returncode})"
            if line.rstrip("\n") == self._sentinel:
                return True, "".join(output)
            output.append(line)

    def close(self) -> None:
        if self._process.poll() is None:
            os.killpg(self._process.pid, signal.SIGKILL)
        self._process.wait(timeout=10)
        self._reader.join(timeout=10)


def _session_env(server: ServerThread) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFY_")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        NOTIFY_CLIENT_URL=f"http://127.0.0.1:{server.ports.client}",
        NOTIFY_INTERNAL_URL=f"http://127.0.0.1:{server.ports.internal}",
        NOTIFY_METRICS_URL=f"http://127.0.0.1:{server.ports.metrics}",
    )
    return env


# What the docs' blocks call besides notifyctl and notifyd, by the Debian package that has it.
DOC_TOOLS = {"bash": "bash", "curl": "curl", "grep": "grep", "python3": "python3"}
INSTALL_TIMEOUT = 600


@pytest.fixture(scope="module")
def doc_tools() -> None:
    """The commands the docs use; Debian's packages are installed when one is missing."""
    missing = sorted({pkg for tool, pkg in DOC_TOOLS.items() if shutil.which(tool) is None})
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.skip(f"the docs need {', '.join(missing)}, and they cannot be installed here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    run = functools.partial(
        subprocess.run, env=env, capture_output=True, text=True, timeout=INSTALL_TIMEOUT
    )
    if run(install).returncode != 0:  # a new machine has no package lists yet
        run(["apt-get", "update", "-qq"])
        result = run(install)
        if result.returncode != 0:
            pytest.skip(f"could not install {', '.join(missing)}: {result.stderr[-500:]}")


def _runnable_pages() -> Iterator[Path]:
    for page in PAGES:
        if examples(page.read_text()):
            yield page


@pytest.mark.parametrize(
    "page", list(_runnable_pages()), ids=lambda p: str(Path(p).relative_to(ROOT))
)
@pytest.mark.usefixtures("doc_tools")
@pytest.mark.timeout(INSTALL_TIMEOUT + 300)
def test_runnable_blocks_print_what_the_docs_show(page: Path, tmp_path: Path) -> None:
    with running_server() as server:
        session = Session(tmp_path, _session_env(server))
        try:
            for example in examples(page.read_text()):
                where = f"{page.relative_to(ROOT)}:{example.command.line}"
                finished, output = session.run(with_ports(example.command.text, server))
                assert finished, f"{where} failed:\n{output}"
                if example.expected is not None:
                    assert matches(example.expected.text, output), (
                        f"{where} printed:\n{output}\nthe docs show "
                        f"(line {example.expected.line}):\n{example.expected.text}"
                    )
        finally:
            session.close()


def test_the_pages_that_must_run_have_runnable_blocks() -> None:
    counts = {p.relative_to(ROOT).as_posix(): len(examples(p.read_text())) for p in PAGES}
    for page in ("README.md", "docs/quickstart.md", "docs/concepts.md", "docs/operations.md"):
        assert counts.get(page, 0) >= 2, (page, counts.get(page))


# --- the convention itself

SAMPLE = """\
Intro.

```sh runnable
echo one
```

```text output
one
```

```sh
not run
```

```sh runnable
echo two
```
"""


def test_examples_pair_each_runnable_block_with_its_output() -> None:
    found = examples(SAMPLE)
    assert [(e.command.text, e.expected and e.expected.text) for e in found] == [
        ("echo one", "one"),
        ("echo two", None),
    ]
    assert found[0].command.line == 3


def test_an_output_block_must_follow_a_runnable_one() -> None:
    with pytest.raises(ValueError, match="line 1"):
        examples("```text output\nx\n```\n")
    with pytest.raises(ValueError, match="line 5"):
        examples("```sh runnable\nx\n```\ntext between\n```text output\nx\n```\n")


def test_wildcards_match_any_text() -> None:
    assert matches('{"id":"...","n":1}', '{"id":"01a2-33","n":1}')
    assert matches("first\n...\nlast", "first\nmiddle\nmore\nlast")
    assert matches("a...", "a")
    assert matches("x  \n\n", "\nx")  # trailing spaces and blank edges never count
    assert not matches('{"n":1}', '{"n":2}')
    assert not matches("a.c", "abc")  # only ... is special, never a regex


def test_ports_are_rewritten_to_the_servers() -> None:
    with running_server() as server:
        text = with_ports("curl localhost:8080 localhost:8081 localhost:9090 :8082", server)
    assert text == (
        f"curl 127.0.0.1:{server.ports.client} 127.0.0.1:{server.ports.internal} "
        f"127.0.0.1:{server.ports.metrics} :8082"
    )


def test_a_failing_command_fails_its_block(tmp_path: Path) -> None:
    session = Session(tmp_path, dict(os.environ))
    try:
        assert session.run("KEPT=yes; echo ok") == (True, "ok\n\n")
        assert session.run('echo "$KEPT"') == (True, "yes\n\n")
        finished, output = session.run("false\necho never")
        assert not finished
        assert "never" not in output
    finally:
        session.close()


# --- the README's first screen and links


def test_readme_first_screen_has_the_two_commands_then_the_sdk_and_the_cli() -> None:
    readme = (ROOT / "README.md").read_text()
    first, _ = fenced_blocks(readme)[0]
    assert [line.split("#")[0].strip() for line in first.text.splitlines()] == [
        "make run",
        "make test",
    ]
    screen = readme.split("\n## ", 1)[0]
    assert "NotifyClient(" in screen
    assert "notifyctl send" in screen
    assert "notifyctl tail" in screen


_LINK = re.compile(r"\]\((?P<target>[^)\s]+)\)")


def test_relative_links_point_at_files_of_the_repository() -> None:
    for page in PAGES:
        for match in _LINK.finditer(page.read_text()):
            target = match["target"].split("#", 1)[0]
            if not target or re.match(r"^[a-z]+:", target):
                continue
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(ROOT), (page.name, target)
            assert resolved.exists(), (page.name, target)


# --- the generated references


def _tool(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _descriptors_with_comments(tmp_path: Path) -> descriptor_pb2.FileDescriptorSet:
    """The proto compiled with its comments, by grpcio-tools' protoc (no buf needed)."""
    from grpc_tools import protoc  # type: ignore[import-untyped]

    out = tmp_path / "notify.binpb"
    include = resources.files("grpc_tools") / "_proto"
    code = protoc.main(
        [
            "protoc",
            f"-I{include}",
            f"-I{ROOT / 'proto'}",
            "--include_source_info",
            "--include_imports",
            f"--descriptor_set_out={out}",
            "elloloop/notify/v1/notify.proto",
        ]
    )
    assert code == 0
    return descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())


def test_configuration_reference_is_current() -> None:
    page = (ROOT / "docs" / "configuration.md").read_text()
    assert page == _tool("configdocs").render(), "run make gen"


def test_api_reference_is_current(tmp_path: Path) -> None:
    files = _descriptors_with_comments(tmp_path).file
    page = (ROOT / "docs" / "api.md").read_text()
    assert page == _tool("apidocs").render(files), "run make gen"


def test_every_element_of_the_proto_is_documented(tmp_path: Path) -> None:
    apidocs = _tool("apidocs")
    [file] = [f for f in _descriptors_with_comments(tmp_path).file if f.name == apidocs.PROTO]
    comments = apidocs.Comments(file)
    missing: list[str] = []
    for s, service in enumerate(file.service):
        missing += [service.name] * (not comments(apidocs.SERVICE, s))
        for m, method in enumerate(service.method):
            if not comments(apidocs.SERVICE, s, apidocs.METHOD, m):
                missing.append(f"{service.name}.{method.name}")
    for i, message in enumerate(file.message_type):
        missing += [message.name] * (not comments(apidocs.MESSAGE, i))
        for f, field in enumerate(message.field):
            if not comments(apidocs.MESSAGE, i, apidocs.FIELD, f):
                missing.append(f"{message.name}.{field.name}")
    for e, enum in enumerate(file.enum_type):
        missing += [enum.name] * (not comments(apidocs.ENUM, e))
        for v, value in enumerate(enum.value):
            if not comments(apidocs.ENUM, e, apidocs.ENUM_VALUE, v):
                missing.append(value.name)
    assert missing == []
