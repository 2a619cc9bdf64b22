/**
 * Failed logins, per source address: after a few, every further answer to a
 * failed login from that address waits, longer with each failure (doubling up
 * to a cap), so guessing keys or tokens gets slow. The wait is a timer on that
 * one request: other clients, and this server's event loop, never wait. An
 * address is forgotten after a quiet spell; the table is bounded.
 */
const FREE_FAILURES = 3;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const FORGET_AFTER_MS = 15 * 60_000;
const MAX_ADDRESSES = 10_000;

interface Record {
  failures: number;
  last: number;
}

export class LoginThrottle {
  private readonly seen = new Map<string, Record>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /** Records a failed login from `address` (what failed, for the log); returns how long its answer should wait, in ms. */
  failed(address: string, what: string): number {
    const now = this.now();
    const known = this.current(address, now);
    const record = { failures: (known?.failures ?? 0) + 1, last: now };
    // Re-inserted, so the map's order is least recently failed first.
    this.seen.delete(address);
    this.seen.set(address, record);
    if (this.seen.size > MAX_ADDRESSES) this.seen.delete(this.seen.keys().next().value as string);
    const delay = delayFor(record.failures);
    this.log(`auth: failed login from ${address}: ${what} (${record.failures} in a row${delay > 0 ? `; answered after ${delay / 1000}s` : ''})`);
    return delay;
  }

  /** The wait for an answer to `address` now, without recording anything. */
  delay(address: string): number {
    return delayFor(this.current(address, this.now())?.failures ?? 0);
  }

  private current(address: string, now: number): Record | undefined {
    const record = this.seen.get(address);
    if (record && now - record.last > FORGET_AFTER_MS) {
      this.seen.delete(address);
      return undefined;
    }
    return record;
  }
}

/** No wait for the first few failures, then 0.5 s doubling up to 30 s. */
export function delayFor(failures: number): number {
  if (failures <= FREE_FAILURES) return 0;
  return Math.min(FIRST_DELAY_MS * 2 ** (failures - FREE_FAILURES - 1), MAX_DELAY_MS);
}

/** Resolves after `ms` (at once for 0). */
export const wait = (ms: number) => (ms > 0 ? new Promise<void>((resolve) => setTimeout(resolve, ms).unref()) : Promise.resolve());
