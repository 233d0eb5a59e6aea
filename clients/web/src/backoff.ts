// How long the live stream waits before its next attempt. "Full jitter"
// (a uniformly random wait below an exponentially growing ceiling) spreads a
// crowd of browsers that lost the same server over the whole window, so they
// do not all come back in the same instant.

export interface BackoffPolicy {
  /** The ceiling of the first retry, in ms. */
  baseMs: number;
  /** No wait is longer than this, in ms. */
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffPolicy = { baseMs: 500, maxMs: 30_000 };

/** The ceiling for retry `attempt` (1, 2, 3…): base · 2^(attempt-1), at most max. */
export function backoffCeiling(attempt: number, policy: BackoffPolicy = DEFAULT_BACKOFF): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 30);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}

/** A wait in [0, ceiling) for retry `attempt`; `random` is injectable for tests. */
export function backoffDelay(
  attempt: number,
  policy: BackoffPolicy = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * backoffCeiling(attempt, policy));
}
