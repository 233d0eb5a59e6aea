import { describe, expect, it } from "vitest";
import { backoffCeiling, backoffDelay } from "../src/backoff.js";
import { matchesFilter } from "../src/filter.js";
import {
  ArchiveScope,
  DeliveryChannel,
  DeliveryStatus,
  ReadScope,
  Severity,
} from "../src/gen/elloloop/notify/v1/notify_pb.js";
import { row } from "./rows.js";

const NOW = 10_000;

describe("matchesFilter", () => {
  it("the default filter is the in-app inbox: not archived, not snoozed, not expired", () => {
    expect(matchesFilter(row("a", 1), {}, NOW)).toBe(true);
    expect(matchesFilter(row("a", 1, { archivedAtMs: 5n }), {}, NOW)).toBe(false);
    expect(matchesFilter(row("a", 1, { snoozedUntilMs: 20_000n }), {}, NOW)).toBe(false);
    expect(matchesFilter(row("a", 1, { snoozedUntilMs: 9_000n }), {}, NOW)).toBe(true);
    expect(matchesFilter(row("a", 1, { expiresAtMs: 9_000n }), {}, NOW)).toBe(false);
    expect(matchesFilter(row("a", 1, { channel: DeliveryChannel.EMAIL }), {}, NOW)).toBe(false);
  });

  it("archive, read and snooze scopes", () => {
    const archived = row("a", 1, { archivedAtMs: 5n });
    expect(matchesFilter(archived, { archived: ArchiveScope.ARCHIVED }, NOW)).toBe(true);
    expect(matchesFilter(row("b", 1), { archived: ArchiveScope.ARCHIVED }, NOW)).toBe(false);
    expect(matchesFilter(archived, { archived: ArchiveScope.ALL }, NOW)).toBe(true);
    const read = row("r", 1, { status: DeliveryStatus.READ });
    expect(matchesFilter(read, { read: ReadScope.UNREAD }, NOW)).toBe(false);
    expect(matchesFilter(read, { read: ReadScope.READ }, NOW)).toBe(true);
    expect(matchesFilter(row("u", 1), { read: ReadScope.READ }, NOW)).toBe(false);
    const snoozed = row("s", 1, { snoozedUntilMs: 20_000n });
    expect(matchesFilter(snoozed, { snoozed: true }, NOW)).toBe(true);
    expect(matchesFilter(row("v", 1), { snoozed: true }, NOW)).toBe(false);
  });

  it("lists are any-of", () => {
    const n = row("a", 1, { category: "deploy", tags: ["prod", "api"], severity: Severity.ERROR });
    expect(matchesFilter(n, { categories: ["deploy", "x"] }, NOW)).toBe(true);
    expect(matchesFilter(n, { categories: ["x"] }, NOW)).toBe(false);
    expect(matchesFilter(n, { tags: ["api"] }, NOW)).toBe(true);
    expect(matchesFilter(n, { tags: ["dev"] }, NOW)).toBe(false);
    expect(matchesFilter(n, { severities: [Severity.WARNING, Severity.ERROR] }, NOW)).toBe(true);
    expect(matchesFilter(n, { severities: [Severity.INFO] }, NOW)).toBe(false);
    const mail = row("m", 1, { channel: DeliveryChannel.EMAIL });
    expect(matchesFilter(mail, { channels: [DeliveryChannel.EMAIL] }, NOW)).toBe(true);
  });
});

describe("backoff with full jitter", () => {
  it("doubles the ceiling per attempt up to the maximum", () => {
    const policy = { baseMs: 100, maxMs: 1_000 };
    expect([1, 2, 3, 4, 5, 50].map((a) => backoffCeiling(a, policy))).toEqual([
      100, 200, 400, 800, 1_000, 1_000,
    ]);
  });

  it("waits anywhere from 0 to just below the ceiling", () => {
    const policy = { baseMs: 100, maxMs: 1_000 };
    expect(backoffDelay(3, policy, () => 0)).toBe(0);
    expect(backoffDelay(3, policy, () => 0.5)).toBe(200);
    expect(backoffDelay(3, policy, () => 0.999_999)).toBe(399);
  });
});
