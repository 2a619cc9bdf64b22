/**
 * Failed logins, per source address: after a few, every further answer to a
 * failed login from that address waits, longer with each failure (doubling up
 * to a cap), so guessing keys or tokens gets slow. The wait is a timer on that
 * one request: other clients, and this server's event loop, never wait. An
 * address is forgotten after a quiet spell; the table is bounded.
 */
import { isIPv6 } from 'node:net';

const FREE_FAILURES = 3;
const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 30_000;
const FORGET_AFTER_MS = 15 * 60_000;
const MAX_ADDRESSES = 10_000;

/** Answers to one address wait in turn; past this much waiting, its connection is dropped instead. */
export const MAX_QUEUE_MS = 120_000;

interface Record {
  failures: number;
  last: number;
  /** When the last answer to this address that waits goes out: answers go out one after another. */
  nextAt: number;
}

/**
 * Whose failures count together: an IPv4 address; an IPv6 address by its /64
 * (one host commonly has a whole /64); an IPv4-mapped IPv6 address as IPv4.
 */
export function addressKey(address: string): string {
  const mapped = /^::ffff:([0-9]+\.[0-9]+\.[0-9]+\.[0-9]+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.toLowerCase().split('%')[0]!.split('::');
  const left = head ? head.split(':') : [];
  const right = address.includes('::') ? (tail ? tail.split(':') : []) : [];
  const groups = address.includes('::') ? [...left, ...Array<string>(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

export class LoginThrottle {
  private readonly seen = new Map<string, Record>();

  constructor(
    private readonly log: (line: string) => void,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * Records a failed login from `address` (what failed, for the log); returns
   * how long its answer should wait, in ms. Answers to one address wait in
   * turn, so many connections guessing at once are no faster than one; a
   * wait past MAX_QUEUE_MS means: drop the connection instead of answering.
   */
  failed(address: string, what: string): number {
    const now = this.now();
    const key = addressKey(address);
    const known = this.current(key, now);
    const failures = (known?.failures ?? 0) + 1;
    const delay = delayFor(failures);
    const nextAt = delay > 0 ? Math.max(now, known?.nextAt ?? now) + delay : now;
    // Re-inserted, so the map's order is least recently failed first.
    this.seen.delete(key);
    this.seen.set(key, { failures, last: now, nextAt });
    if (this.seen.size > MAX_ADDRESSES) this.seen.delete(this.seen.keys().next().value as string);
    const wait = nextAt - now;
    this.log(`auth: failed login from ${address}: ${what} (${failures} in a row${wait > 0 ? `; answered after ${(wait / 1000).toFixed(1)}s` : ''})`);
    return wait;
  }

  /** The wait for an answer to `address` now, without recording anything. */
  delay(address: string): number {
    return delayFor(this.current(addressKey(address), this.now())?.failures ?? 0);
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
