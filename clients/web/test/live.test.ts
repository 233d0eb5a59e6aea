import { afterEach, describe, expect, it } from "vitest";
import { backoffDelay } from "../src/backoff.js";
import { DeliveryStatus, ReadScope } from "../src/gen/elloloop/notify/v1/notify_pb.js";
import type { Live, LiveOptions } from "../src/live.js";
import { Code, fakeServer, statusWhere, viewWhere } from "./fake.js";
import { counts, ids, row } from "./rows.js";

const POLICY = { baseMs: 100, maxMs: 1_000 };
let lives: Live[] = [];

afterEach(() => {
  for (const live of lives) live.stop();
  lives = [];
});

/** A live with recorded waits that return at once, and jitter fixed at one half. */
function start(server: ReturnType<typeof fakeServer>, extra: LiveOptions = {}) {
  const sleeps: number[] = [];
  const live = server.client.subscribe({
    backoff: POLICY,
    random: () => 0.5,
    sleep: async (ms) => void sleeps.push(ms),
    pageSize: 5,
    ...extra,
  });
  lives.push(live);
  return { live, sleeps };
}

const hello = { event: { case: "heartbeat", value: { timestampMs: 1n } } } as const;
const countsEvent = (u: number) =>
  ({ event: { case: "counts", value: { counts: counts(u) } } }) as const;
const note = (id: string, ms: number, token: string) =>
  ({
    event: { case: "notification", value: { notification: row(id, ms), resumeToken: token } },
  }) as const;

describe("createNotifyClient", () => {
  it("sends the bearer token on every call, asking a token function each time", async () => {
    let n = 0;
    const server = fakeServer(() => `jwt-${++n}`);
    await server.client.getNotifications({});
    await server.client.markNotifications({ all: true });
    expect(server.authorizations).toEqual(["Bearer jwt-1", "Bearer jwt-2"]);
  });
});

describe("subscribe", () => {
  it("goes live, loads the first page, and keeps it from the stream's events", async () => {
    const server = fakeServer();
    server.pages = () => ({ notifications: [row("a", 1)], counts: counts(1) });
    const states: string[] = [];
    const { live } = start(server, { onStatus: (i) => states.push(i.status) });
    const stream = await server.nextStream();
    expect(stream.request.resumeToken).toBe("");
    stream.push({ sessionId: "s1", ...hello }, countsEvent(1));
    const info = await statusWhere(live, (i) => i.status === "live");
    expect(info.sessionId).toBe("s1");
    await viewWhere(live.inbox, (s) => s.loaded && !s.loading);
    expect(server.pageRequests[0]?.limit).toBe(5);
    stream.push(note("b", 2, "t-b"));
    const s = await viewWhere(live.inbox, (v) => v.items.length === 2);
    expect(ids(s.items)).toEqual(["b", "a"]);
    expect(s.counts?.unread).toBe(2); // predicted until the counts event
    stream.push(countsEvent(9));
    expect((await viewWhere(live.inbox, (v) => v.counts?.unread === 9)).counts?.unread).toBe(9);
    expect(live.resumeToken()).toBe("t-b");
    expect(states.slice(0, 2)).toEqual(["connecting", "live"]);
  });

  it("holds events that arrive while the first page loads, then applies them after it", async () => {
    const server = fakeServer();
    let open!: () => void;
    server.gate = new Promise((resolve) => (open = resolve));
    server.pages = () => ({ notifications: [row("a", 1), row("b", 2)], counts: counts(2) });
    const { live } = start(server);
    const updateSeen = new Promise<void>((resolve) =>
      live.onEvent((e) => e.event.case === "update" && resolve()),
    );
    const stream = await server.nextStream();
    const readB = row("b", 2, { status: DeliveryStatus.READ });
    stream.push(hello, countsEvent(2), {
      event: {
        case: "update",
        value: { notifications: [readB], deletedIds: ["a"], resumeToken: "u1" },
      },
    });
    await updateSeen;
    expect(live.inbox.getSnapshot()).toMatchObject({ loading: true, loaded: false });
    // The page answer is older than the update: the update must win.
    open();
    const s = await viewWhere(live.inbox, (v) => v.loaded && !v.loading);
    expect(ids(s.items)).toEqual(["b"]);
    expect(s.items[0]?.status).toBe(DeliveryStatus.READ);
  });

  it("reconnects after backoff with the last resume token, and replays without double counting", async () => {
    const server = fakeServer();
    server.pages = () => ({ notifications: [], counts: counts(0) });
    const { live, sleeps } = start(server);
    const first = await server.nextStream();
    first.push(hello, countsEvent(0), note("a", 1, "t-a"));
    await viewWhere(live.inbox, (s) => s.items.length === 1 && !s.loading);
    first.fail(Code.Unavailable, "draining");
    const retry = await statusWhere(live, (i) => i.status === "retrying");
    expect(retry.error?.code).toBe(Code.Unavailable);
    expect(retry.delayMs).toBe(backoffDelay(1, POLICY, () => 0.5));
    const second = await server.nextStream();
    expect(second.request.resumeToken).toBe("t-a");
    expect(sleeps).toEqual([50]);
    // The handshake counts already include the replayed row: no prediction for it.
    second.push(hello, countsEvent(2), note("b", 2, "t-b"));
    const s = await viewWhere(live.inbox, (v) => v.items.length === 2);
    expect(s.counts?.unread).toBe(2);
    expect(server.pageRequests).toHaveLength(1); // resumed: no refetch
    // After the replay, a live row is predicted again.
    second.push({ event: { case: "update", value: { resumeToken: "t-u" } } }, note("c", 3, "t-c"));
    expect((await viewWhere(live.inbox, (v) => v.items.length === 3)).counts?.unread).toBe(3);
    expect(live.resumeToken()).toBe("t-c");
  });

  it("backs off exponentially while attempts fail, and starts over once a stream opened", async () => {
    const server = fakeServer();
    const { live, sleeps } = start(server);
    for (let i = 0; i < 4; i++) (await server.nextStream()).fail(Code.Unavailable);
    const fifth = await server.nextStream();
    expect(sleeps).toEqual([50, 100, 200, 400]);
    fifth.push(hello);
    await statusWhere(live, (i) => i.status === "live");
    fifth.end();
    await server.nextStream();
    expect(sleeps).toEqual([50, 100, 200, 400, 50]);
  });

  it("waits the longest backoff after unauthenticated", async () => {
    const server = fakeServer();
    const { sleeps } = start(server);
    (await server.nextStream()).fail(Code.Unauthenticated, "expired");
    await server.nextStream();
    expect(sleeps).toEqual([POLICY.maxMs]);
  });

  it("OUT_OF_RANGE drops the token, refetches the first page and counts, and goes on", async () => {
    const server = fakeServer();
    server.pages = () => ({ notifications: [row("x", 9)], counts: counts(4) });
    const { live, sleeps } = start(server, { resumeToken: "too-old" });
    const first = await server.nextStream();
    expect(first.request.resumeToken).toBe("too-old");
    first.push(hello);
    await statusWhere(live, (i) => i.status === "live");
    expect(server.pageRequests).toHaveLength(0);
    first.fail(Code.OutOfRange, "too far behind");
    const second = await server.nextStream();
    expect(second.request.resumeToken).toBe("");
    expect(sleeps).toEqual([]); // at once: the server is fine, the token is not
    second.push(hello);
    const s = await viewWhere(live.inbox, (v) => v.loaded && !v.loading);
    expect(ids(s.items)).toEqual(["x"]);
    expect(s.counts?.unread).toBe(4);
  });

  it("ends on unsubscribe and on its AbortSignal: the stream is cancelled, status closed", async () => {
    const server = fakeServer();
    const { live } = start(server);
    const stream = await server.nextStream();
    stream.push(hello);
    await statusWhere(live, (i) => i.status === "live");
    live.unsubscribe();
    await statusWhere(live, (i) => i.status === "closed");
    expect(stream.signal.aborted).toBe(true);

    const abort = new AbortController();
    const other = start(server, { signal: abort.signal }).live;
    (await server.nextStream()).push(hello);
    await statusWhere(other, (i) => i.status === "live");
    abort.abort();
    await statusWhere(other, (i) => i.status === "closed");
    expect(server.streams[1]?.signal.aborted).toBe(true);
  });

  it("restarts cleanly: a stop then a start at once never reports closed over the new run", async () => {
    const server = fakeServer();
    const { live } = start(server);
    await server.nextStream();
    live.stop();
    const seen: string[] = [];
    live.onStatus((info) => seen.push(info.status));
    live.start();
    const stream = await server.nextStream();
    stream.push(hello);
    await statusWhere(live, (i) => i.status === "live");
    expect(seen).toEqual(["connecting", "live"]);
    expect(server.streams.filter((s) => !s.signal.aborted)).toEqual([stream]);
  });

  it("gives up on a silent stream after the idle timeout and reconnects", async () => {
    const server = fakeServer();
    const { live } = start(server, { idleTimeoutMs: 20 });
    const first = await server.nextStream();
    first.push(hello); // then nothing, not even a heartbeat
    await statusWhere(live, (i) => i.status === "live");
    const second = await server.nextStream();
    expect(first.signal.aborted).toBe(true);
    second.push(hello);
    await statusWhere(live, (i) => i.status === "live");
  });

  it("feeds other views (tabs) from the same stream", async () => {
    const server = fakeServer();
    server.pages = (req) =>
      req.filter?.read === ReadScope.UNREAD
        ? { notifications: [row("u", 2)], counts: counts(1) }
        : {
            notifications: [row("u", 2), row("r", 1, { status: DeliveryStatus.READ })],
            counts: counts(1),
          };
    const { live } = start(server);
    const stream = await server.nextStream();
    stream.push(hello, countsEvent(1));
    await viewWhere(live.inbox, (s) => s.loaded && !s.loading);
    const unread = live.view({ read: ReadScope.UNREAD });
    expect(ids((await viewWhere(unread, (s) => s.loaded && !s.loading)).items)).toEqual(["u"]);
    const readU = row("u", 2, { status: DeliveryStatus.READ });
    stream.push({ event: { case: "update", value: { notifications: [readU], resumeToken: "t" } } });
    await viewWhere(unread, (s) => s.items.length === 0);
    expect(ids(live.inbox.getSnapshot().items)).toEqual(["u", "r"]);
    expect(server.streams).toHaveLength(1);
    unread.close();
  });

  it("loads the listing even when no stream can open", async () => {
    const server = fakeServer();
    server.pages = () => ({ notifications: [row("a", 1)], counts: counts(1) });
    const { live } = start(server);
    (await server.nextStream()).fail(Code.Unimplemented, "streaming is off");
    const s = await viewWhere(live.inbox, (v) => v.loaded && !v.loading);
    expect(ids(s.items)).toEqual(["a"]);
  });
});
