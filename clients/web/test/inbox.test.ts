import { describe, expect, it } from "vitest";
import {
  ArchiveScope,
  DeliveryStatus,
  ReadScope,
} from "../src/gen/elloloop/notify/v1/notify_pb.js";
import type { FilterInit } from "../src/filter.js";
import { type InboxAction, type InboxState, initialInbox, reduceInbox } from "../src/inbox.js";
import { counts, ids, row } from "./rows.js";

const NOW = 1_000_000;
const inbox = { filter: {}, nowMs: NOW };

function run(actions: InboxAction[], state = initialInbox(3), ctx = inbox): InboxState {
  return actions.reduce((s, a) => reduceInbox(s, a, ctx), state);
}

const page = (rows: ReturnType<typeof row>[], nextCursor = "", c = counts(rows.length)) =>
  ({ type: "page", notifications: rows, nextCursor, counts: c }) as const;

describe("reduceInbox", () => {
  it("starts empty and unloaded", () => {
    const s = initialInbox(3);
    expect([s.items, s.counts, s.loaded, s.hasMore, s.limit]).toEqual([[], null, false, false, 3]);
  });

  it("takes a first page, newest first, with its counts and cursor", () => {
    const s = run([page([row("a", 1), row("c", 3), row("b", 2)], "cur", counts(5, 4, 9))]);
    expect(ids(s.items)).toEqual(["c", "b", "a"]);
    expect(s.counts).toEqual(counts(5, 4, 9));
    expect([s.nextCursor, s.hasMore, s.loaded, s.stale]).toEqual(["cur", true, true, false]);
  });

  it("orders rows of the same millisecond by id, as the server pages", () => {
    const s = run([page([row("x1", 5), row("x3", 5), row("x2", 5)])]);
    expect(ids(s.items)).toEqual(["x3", "x2", "x1"]);
  });

  it("puts a live notification on top and predicts the badge until the counts event", () => {
    let s = run([page([row("a", 1)], "", counts(1, 1, 1))]);
    s = reduceInbox(s, { type: "notification", notification: row("b", 2), predict: true }, inbox);
    expect(ids(s.items)).toEqual(["b", "a"]);
    expect(s.counts).toEqual(counts(2, 2, 2));
    s = reduceInbox(s, { type: "counts", counts: counts(7, 6, 8) }, inbox);
    expect(s.counts).toEqual(counts(7, 6, 8));
  });

  it("does not predict without being asked (a replayed row is already counted)", () => {
    let s = run([page([row("a", 1)], "", counts(1))]);
    s = reduceInbox(s, { type: "notification", notification: row("b", 2) }, inbox);
    expect(ids(s.items)).toEqual(["b", "a"]);
    expect(s.counts).toEqual(counts(1));
  });

  it("dedupes by row id: a notification already listed changes nothing", () => {
    const s0 = run([page([row("a", 1), row("b", 2)], "", counts(2))]);
    const s1 = reduceInbox(
      s0,
      { type: "notification", notification: row("b", 2, { title: "again" }), predict: true },
      inbox,
    );
    expect(s1).toBe(s0);
    const twice = run([page([row("a", 1), row("a", 1)])]);
    expect(ids(twice.items)).toEqual(["a"]);
  });

  it("applies an update's new state in place and drops rows that left the filter", () => {
    const unreadTab = { filter: { read: ReadScope.UNREAD }, nowMs: NOW };
    let s = run([page([row("a", 1), row("b", 2)])], initialInbox(3), unreadTab);
    const readB = row("b", 2, { status: DeliveryStatus.READ, readAtMs: 5n });
    s = reduceInbox(s, { type: "update", notifications: [readB], deletedIds: [] }, unreadTab);
    expect(ids(s.items)).toEqual(["a"]);
    // The same update on the "all" listing keeps the row, with its new state.
    let all = run([page([row("a", 1), row("b", 2)])]);
    all = reduceInbox(all, { type: "update", notifications: [readB], deletedIds: [] }, inbox);
    expect(ids(all.items)).toEqual(["b", "a"]);
    expect(all.items[0]?.status).toBe(DeliveryStatus.READ);
  });

  it("lists a row an update brings into the filter (unarchived, woken from a snooze)", () => {
    let s = run([page([row("a", 1), row("c", 3)])]);
    s = reduceInbox(s, { type: "update", notifications: [row("b", 2)], deletedIds: [] }, inbox);
    expect(ids(s.items)).toEqual(["c", "b", "a"]);
  });

  it("removes deleted ids", () => {
    let s = run([page([row("a", 1), row("b", 2), row("c", 3)])]);
    s = reduceInbox(s, { type: "update", notifications: [], deletedIds: ["b", "zz"] }, inbox);
    expect(ids(s.items)).toEqual(["c", "a"]);
  });

  it("handles a collapse: the old row deleted, the new one (counted x2) on top", () => {
    let s = run([page([row("a", 1), row("old", 2, { collapseKey: "k", collapsedCount: 1 })])]);
    s = reduceInbox(s, { type: "update", notifications: [], deletedIds: ["old"] }, inbox);
    const fresh = row("new", 3, { collapseKey: "k", collapsedCount: 2 });
    s = reduceInbox(s, { type: "notification", notification: fresh }, inbox);
    expect(ids(s.items)).toEqual(["new", "a"]);
    expect(s.items[0]?.collapsedCount).toBe(2);
    // In the other order (the notification first) the result is the same.
    let t = run([page([row("a", 1), row("old", 2, { collapseKey: "k", collapsedCount: 1 })])]);
    t = reduceInbox(t, { type: "notification", notification: fresh }, inbox);
    t = reduceInbox(t, { type: "update", notifications: [], deletedIds: ["old"] }, inbox);
    expect(ids(t.items)).toEqual(["new", "a"]);
  });

  it("keeps the first page bound: the oldest row drops off and paging must start over", () => {
    let s = run([page([row("a", 1), row("b", 2), row("c", 3)], "")]);
    expect(s.hasMore).toBe(false);
    s = reduceInbox(s, { type: "notification", notification: row("d", 4) }, inbox);
    expect(ids(s.items)).toEqual(["d", "c", "b"]);
    expect([s.hasMore, s.stale]).toEqual([true, true]);
  });

  it("skips a row older than the last listed one while more pages exist", () => {
    let s = run([page([row("b", 2), row("c", 3)], "cur")]);
    s = reduceInbox(s, { type: "update", notifications: [row("a", 1)], deletedIds: [] }, inbox);
    expect(ids(s.items)).toEqual(["c", "b"]);
    // With nothing more on the server it belongs here.
    let t = run([page([row("b", 2), row("c", 3)], "")]);
    t = reduceInbox(t, { type: "update", notifications: [row("a", 1)], deletedIds: [] }, inbox);
    expect(ids(t.items)).toEqual(["c", "b", "a"]);
  });

  it("appends the next page, deduped, and raises the bound by it", () => {
    let s = run([page([row("d", 4), row("e", 5), row("f", 6)], "p2")]);
    s = reduceInbox(
      s,
      { type: "page", notifications: [row("d", 4), row("c", 3)], nextCursor: "", append: true },
      inbox,
    );
    expect(ids(s.items)).toEqual(["f", "e", "d", "c"]);
    expect([s.limit, s.hasMore, s.nextCursor]).toEqual([4, false, ""]);
  });

  it("a first page again resets the bound to the page size", () => {
    let s = run([page([row("d", 4), row("e", 5), row("f", 6)], "p2")]);
    s = reduceInbox(
      s,
      { type: "page", notifications: [row("c", 3)], nextCursor: "", append: true },
      inbox,
    );
    expect(s.limit).toBe(4);
    s = reduceInbox(s, page([row("e", 5), row("f", 6)]), inbox);
    expect([s.limit, ids(s.items)]).toEqual([3, ["f", "e"]]);
  });

  it("keeps notifications outside the filter off the list, but counts inbox rows", () => {
    const archivedTab = { filter: { archived: ArchiveScope.ARCHIVED } as FilterInit, nowMs: NOW };
    let s = run([page([], "", counts(0))], initialInbox(3), archivedTab);
    s = reduceInbox(
      s,
      { type: "notification", notification: row("a", 1), predict: true },
      archivedTab,
    );
    expect(s.items).toEqual([]);
    expect(s.counts?.unread).toBe(1);
  });

  it("counts events replace the counts whatever came before", () => {
    const s = run([{ type: "counts", counts: counts(3, 2, 9) }]);
    expect(s.counts).toEqual(counts(3, 2, 9));
    expect(s.loaded).toBe(false);
  });
});
