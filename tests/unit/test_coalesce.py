"""WriteBatch and CoalescingTransport: writes leave together, in order, within the delay."""

from __future__ import annotations

import asyncio
from typing import Any, cast

from notify.http.coalesce import CoalescingTransport, WriteBatch

HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n"


class Recording:
    """The part of a transport the proxy calls, recording each write."""

    def __init__(self, log: list[tuple[str, bytes]], name: str) -> None:
        self.log = log
        self.name = name
        self.closed = False
        self.aborted = False
        self.buffered = 0

    def write(self, data: bytes) -> None:
        self.log.append((self.name, bytes(data)))

    def writelines(self, parts: list[bytes]) -> None:
        self.log.append((self.name, b"".join(parts)))  # one writev

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = True

    def is_closing(self) -> bool:
        return self.closed or self.aborted

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)

    def can_write_eof(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Setup:
    def __init__(self, max_delay_s: float = 0.001, max_bytes: int = 1 << 20) -> None:
        self.clock = Clock()
        self.batch = WriteBatch(asyncio.get_running_loop(), max_delay_s, max_bytes, self.clock)
        self.log: list[tuple[str, bytes]] = []

    def connection(self, name: str) -> tuple[CoalescingTransport, Recording]:
        real = Recording(self.log, name)
        return CoalescingTransport(cast(asyncio.Transport, real), self.batch), real


async def _end_of_step() -> None:
    """Lets the loop run the callbacks scheduled so far (the batch's flush among them)."""
    await asyncio.sleep(0)


def test_a_steps_writes_leave_when_it_ends_one_send_per_connection() -> None:
    async def run() -> None:
        setup = Setup()
        a, _ = setup.connection("a")
        b, _ = setup.connection("b")
        a.write(HEAD)
        b.write(b"8\r\nframe 1\r\n")
        a.write(b"{}")
        assert setup.log == []  # still this step
        await _end_of_step()
        assert setup.log == [("a", HEAD + b"{}"), ("b", b"8\r\nframe 1\r\n")]

    asyncio.run(run())


def test_writes_of_separate_steps_leave_separately() -> None:
    async def run() -> None:
        setup = Setup()
        a, _ = setup.connection("a")
        a.write(b"frame 1")
        await _end_of_step()
        a.write(memoryview(b"frame 2"))
        a.write(b"")  # nothing to send
        await _end_of_step()
        assert setup.log == [("a", b"frame 1"), ("a", b"frame 2")]

    asyncio.run(run())


def test_a_write_waits_no_longer_than_the_delay() -> None:
    async def run() -> None:
        setup = Setup(max_delay_s=0.001)
        a, _ = setup.connection("a")
        b, _ = setup.connection("b")
        a.write(b"first")
        setup.clock.now += 0.0009
        b.write(b"second")
        assert setup.log == []
        setup.clock.now += 0.0001  # the oldest has now waited 1 ms
        b.write(b"third")
        assert setup.log == [("a", b"first"), ("b", b"secondthird")]
        a.write(b"fourth")  # a new batch, timed from now
        assert setup.log[2:] == []
        await _end_of_step()
        assert setup.log[2:] == [("a", b"fourth")]

    asyncio.run(run())


def test_a_full_batch_leaves_at_once() -> None:
    async def run() -> None:
        setup = Setup(max_bytes=10)
        a, _ = setup.connection("a")
        a.write(b"12345")
        assert setup.log == []
        a.writelines([b"678", b"90"])
        assert setup.log == [("a", b"1234567890")]

    asyncio.run(run())


def test_close_sends_what_waits_first_and_abort_drops_it() -> None:
    async def run() -> None:
        setup = Setup()
        a, real_a = setup.connection("a")
        b, real_b = setup.connection("b")
        a.write(HEAD)
        b.write(b"dropped")
        b.abort()
        a.close()
        assert setup.log == [("a", HEAD)]
        assert real_a.closed
        assert real_b.aborted
        await _end_of_step()
        assert setup.log == [("a", HEAD)]

    asyncio.run(run())


def test_nothing_is_written_to_a_transport_that_is_closing() -> None:
    async def run() -> None:
        setup = Setup()
        a, real = setup.connection("a")
        a.write(HEAD)
        real.closed = True  # the peer went away meanwhile
        await _end_of_step()
        assert setup.log == []
        assert a.get_write_buffer_size() == 0

    asyncio.run(run())


def test_back_pressure_sees_the_real_buffer_and_what_waits() -> None:
    async def run() -> None:
        setup = Setup()
        a, real = setup.connection("a")
        real.buffered = 1000
        a.write(HEAD)
        a.write(b"{}")
        assert a.get_write_buffer_size() == 1000 + len(HEAD) + 2
        await _end_of_step()
        assert a.get_write_buffer_size() == 1000

    asyncio.run(run())


def test_everything_else_is_the_real_transports() -> None:
    async def run() -> None:
        a, _ = Setup().connection("a")
        assert a.get_extra_info("peername") == ("127.0.0.1", 1)
        assert a.get_extra_info("socket", "none") == "none"
        assert a.can_write_eof() is True

    asyncio.run(run())


def test_one_batch_per_loop_and_delay() -> None:
    async def run() -> None:
        loop = asyncio.get_running_loop()
        assert WriteBatch.of(loop, 0.001) is WriteBatch.of(loop, 0.001)
        assert WriteBatch.of(loop, 0.001) is not WriteBatch.of(loop, 0.002)

    asyncio.run(run())
