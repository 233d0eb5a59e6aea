"""The lean containers behave as the deque-based ones they replace, in h2, hpack and asyncio."""

from __future__ import annotations

import asyncio
import collections

import h2.config
import h2.connection
import h2.events
import h2.settings
import hpack
import pytest

from notify.core.smalldeque import SmallDeque
from notify.http import lean, patches


@pytest.fixture(autouse=True, scope="module")
def applied() -> None:
    patches.apply()


def test_small_deque_pops_and_pushes_at_both_ends() -> None:
    items: SmallDeque[int] = SmallDeque([2, 3])
    items.appendleft(1)
    items.append(4)
    assert items.popleft() == 1
    assert items.pop() == 4
    assert list(items) == [2, 3]
    assert items.popleft() == 2
    assert items.popleft() == 3
    with pytest.raises(IndexError):
        items.popleft()


async def test_lean_event_wakes_every_waiter_and_clears() -> None:
    event = lean.LeanEvent()
    assert type(event._waiters) is SmallDeque
    waiters = [asyncio.ensure_future(event.wait()) for _ in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiters)
    event.set()
    assert await asyncio.gather(*waiters) == [True, True, True]
    assert not event._waiters  # each waiter removed itself
    event.clear()
    assert not event.is_set()
    assert await asyncio.wait_for(asyncio.shield(_set_soon(event)), 5) is True


async def _set_soon(event: asyncio.Event) -> bool:
    asyncio.get_running_loop().call_soon(event.set)
    return await event.wait()


async def test_lean_queue_is_a_bounded_fifo_with_join() -> None:
    queue: lean.LeanQueue[int] = lean.LeanQueue(2)
    await queue.put(1)
    await queue.put(2)
    assert queue.full()
    blocked = asyncio.ensure_future(queue.put(3))
    await asyncio.sleep(0)
    assert not blocked.done()  # the bound holds
    assert await queue.get() == 1
    await blocked
    assert [await queue.get(), await queue.get()] == [2, 3]
    getter = asyncio.ensure_future(queue.get())
    await asyncio.sleep(0)
    queue.put_nowait(4)
    assert await getter == 4
    for _ in range(3):
        queue.task_done()
    queue.task_done()
    await asyncio.wait_for(queue.join(), 5)
    with pytest.raises(asyncio.QueueEmpty):
        queue.get_nowait()


async def test_the_event_wrapper_follows_hypercorns_interface() -> None:
    wrapper = lean.LeanEventWrapper()
    assert not wrapper.is_set()
    waiter = asyncio.ensure_future(wrapper.wait())
    await wrapper.set()
    await asyncio.wait_for(waiter, 5)
    assert wrapper.is_set()
    await wrapper.clear()
    assert not wrapper.is_set()


def test_an_unchecked_interpreter_keeps_asyncios_containers() -> None:
    assert lean.stdlib_checked((3, 11))
    assert not lean.stdlib_checked((3, 14))


def test_module_with_overrides_one_name_and_delegates_the_rest() -> None:
    stand_in = lean.module_with(asyncio, Queue=lean.LeanQueue)
    assert stand_in.Queue is lean.LeanQueue
    assert stand_in.Event is asyncio.Event
    assert stand_in.run_coroutine_threadsafe is asyncio.run_coroutine_threadsafe


def _pump(a: h2.connection.H2Connection, b: h2.connection.H2Connection) -> list[object]:
    events: list[object] = []
    for _ in range(10):
        data = a.data_to_send()
        if data:
            events += b.receive_data(data)
        data = b.data_to_send()
        if data:
            events += a.receive_data(data)
        if not data:
            break
    return events


def test_h2_settings_kept_in_lists_change_on_acknowledgement() -> None:
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    server = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
    client.initiate_connection()
    server.initiate_connection()
    _pump(client, server)
    assert all(type(v) is SmallDeque for v in server.local_settings._settings.values())
    server.update_settings({h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: 999})
    assert server.local_settings.max_concurrent_streams != 999  # not until acknowledged
    events = _pump(server, client)
    assert any(isinstance(e, h2.events.RemoteSettingsChanged) for e in events)
    assert server.local_settings.max_concurrent_streams == 999
    assert client.remote_settings.max_concurrent_streams == 999
    kept = server.local_settings._settings[h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS]
    assert list(kept) == [999]  # the old value left on acknowledgement


def test_hpack_tables_in_lists_round_trip_and_evict() -> None:
    encoder, decoder = hpack.Encoder(), hpack.Decoder()
    encoder.header_table_size = decoder.header_table_size = 256  # evicts after a few entries
    assert type(encoder.header_table.dynamic_entries) is SmallDeque
    for number in range(200):
        headers = [("x-trace", f"value-{number % 7}"), (f"x-n{number % 13}", "v" * (number % 40))]
        assert decoder.decode(encoder.encode(headers)) == headers
    entries = encoder.header_table.dynamic_entries
    assert 0 < len(entries) < 20  # evicted as the table filled
    assert sum(32 + len(name) + len(value) for name, value in entries) <= 256
    assert list(entries) == list(decoder.header_table.dynamic_entries)
    assert type(decoder.header_table.dynamic_entries) is not collections.deque
