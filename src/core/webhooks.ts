/**
 * Webhooks: the event sink that tells an app's receivers (`apps.webhooks`,
 * per app overridable) what happened, after the fact. Each event goes to each
 * hook whose `events` name it as a JSON POST of the AppEvent, signed with
 * HMAC-SHA256 of the exact body under the hook's secret
 * (`X-Upaas-Signature: sha256=HEX`), with one id for all its tries
 * (`X-Upaas-Delivery`). A 2xx delivers it; anything else (a redirect too:
 * none is followed), a network error or no answer within
 * `server.webhooks.timeout` is a failed try, retried after
 * `server.webhooks.backoff` seconds, doubled each time, up to
 * `server.webhooks.tries` in all. Every delivery is a record
 * (state/webhooks.ts) from the moment the event is emitted; emit itself
 * returns at once, so no build or release waits for a receiver.
 */
import { createHmac, randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type AppSettings, appSettings } from '../config/config.ts';
import type { AppEvent, EventName, EventSink } from '../events/events.ts';
import { serverLog } from '../process/server-log.ts';
import type { DeliveryProgress, DeliveryRecord, DeliveryStatus } from '../state/webhooks.ts';
import type { Services } from './services.ts';

type Hook = AppSettings['webhooks'][number];
type Needs = Pick<Services, 'config' | 'state'>;

/** Deliveries kept per app; older ones go as new ones come. */
export const DELIVERIES_PER_APP = 200;
/** What of a receiver's answer is read (its start, for the error); the rest is never read. */
const ANSWER_BYTES = 4 * 1024;
/** What of it the error keeps. */
const ANSWER_SHOWN = 200;

/** The error of deliveries cut short by a server stop. */
export const SERVER_STOPPED = 'the server stopped before it was delivered';

/** A URL's user name or password as it is meant: percent-decoded, or as written when that fails (`%zz`). */
function decoded(part: string): string {
  try {
    return decodeURIComponent(part);
  } catch {
    return part;
  }
}

/** `sha256=HEX`: the X-Upaas-Signature of `body` under `secret`. */
export function signature(secret: string, body: Buffer | string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

/** `url` as it may be shown: a user name and password in it become `***`. */
export function shownUrl(url: string): string {
  if (!URL.canParse(url)) return url;
  const parsed = new URL(url);
  if (!parsed.username && !parsed.password) return url;
  parsed.username = '***';
  parsed.password = '';
  return parsed.toString();
}

/** One delivery as the deliveries command shows it (no payload, no secret, the URL masked). */
export type DeliveryView = Omit<DeliveryRecord, 'app' | 'payload'>;

/** The app's webhook deliveries, newest first. */
export function listDeliveries(services: Pick<Services, 'state'>, app: string): DeliveryView[] {
  return services.state.webhooks.list(app).map(({ id, event, url, status, attempts, responseCode, error, createdAt, finishedAt }) => ({
    id,
    event,
    url: shownUrl(url),
    status,
    attempts,
    responseCode,
    error,
    createdAt,
    finishedAt,
  }));
}

/** What one try got: delivered or not, the response code (null: none came), why it failed. */
interface Answer {
  ok: boolean;
  code: number | null;
  error: string | null;
}

export class Webhooks implements EventSink {
  private readonly inFlight = new Set<Promise<void>>();
  private readonly stopping = new AbortController();
  private stopReason = SERVER_STOPPED;

  constructor(private readonly services: Needs) {}

  /** Records a pending delivery for each of the app's hooks that takes `event` and starts sending it; returns at once, never throws. */
  emit(event: AppEvent): void {
    let hooks: Hook[];
    try {
      hooks = appSettings(this.services.config, event.app).webhooks.filter((hook) => hook.events.includes(event.event));
    } catch (error) {
      serverLog(`webhooks of ${event.app}: ${(error as Error).message}`);
      return;
    }
    // The exact text sent and signed (fetch and the HMAC both take it as UTF-8).
    const body = JSON.stringify(event);
    for (const hook of hooks) {
      const id = randomUUID();
      try {
        this.services.state.webhooks.add(
          { id, app: event.app, event: event.event, url: shownUrl(hook.url), payload: body, createdAt: new Date().toISOString() },
          DELIVERIES_PER_APP,
        );
      } catch (error) {
        serverLog(`webhook delivery of ${event.event} of ${event.app} to ${shownUrl(hook.url)} not recorded, not sent: ${(error as Error).message}`);
        continue;
      }
      this.track(this.deliver(id, event.app, event.event, hook, body));
    }
  }

  /** Resolves when every delivery started so far (and any started meanwhile) has been delivered or has failed. */
  async settle(): Promise<void> {
    while (this.inFlight.size > 0) await Promise.all([...this.inFlight]);
  }

  /**
   * Aborts every try and wait in flight and records those deliveries failed
   * with `reason`; later events are recorded failed the same way. Resolves
   * once all are recorded.
   */
  async stop(reason = SERVER_STOPPED): Promise<void> {
    if (!this.stopping.signal.aborted) {
      this.stopReason = reason;
      this.stopping.abort();
    }
    await this.settle();
  }

  /**
   * At start: deliveries still pending from before the longest a delivery
   * can take belonged to a process that ended meanwhile; they are marked
   * failed. Returns how many.
   */
  failStale(): number {
    const { timeout, tries, backoff } = this.services.config.server.webhooks;
    const longest = tries * timeout + backoff * (2 ** (tries - 1) - 1) + 60;
    return this.services.state.webhooks.failStale(new Date(Date.now() - longest * 1000).toISOString(), 'the process sending it ended before it was delivered');
  }

  private track(work: Promise<void>): void {
    const tracked: Promise<void> = work
      .catch((error: unknown) => serverLog(`webhook delivery: ${(error as Error).message}`))
      .finally(() => this.inFlight.delete(tracked));
    this.inFlight.add(tracked);
  }

  /** The tries of one delivery, each recorded as it ends; the last outcome stays. */
  private async deliver(id: string, app: string, event: EventName, hook: Hook, body: string): Promise<void> {
    const { timeout, tries, backoff } = this.services.config.server.webhooks;
    const stop = this.stopping.signal;
    const request = signedRequest(hook, id, event, body);
    let progress: DeliveryProgress = { status: 'pending', attempts: 0, responseCode: null, error: null };
    for (let attempt = 1; attempt <= tries && !stop.aborted; attempt++) {
      if (attempt > 1) {
        const waited = await sleep(backoff * 1000 * 2 ** (attempt - 2), true, { signal: stop }).catch(() => false);
        if (!waited) break;
      }
      const answer = await post(request, timeout, stop);
      const last = answer.ok || attempt === tries || stop.aborted;
      progress = {
        status: answer.ok ? 'delivered' : last ? 'failed' : 'pending',
        attempts: attempt,
        responseCode: answer.code,
        error: answer.ok ? null : (answer.error ?? this.stopReason),
      };
      this.record(id, progress);
      if (last) break;
    }
    if (progress.status === 'pending') {
      progress = { ...progress, status: 'failed', error: this.stopReason };
      this.record(id, progress);
    }
    if (progress.status === 'failed') {
      const tried = progress.attempts === 0 ? 'before any try' : progress.attempts === 1 ? 'after 1 try' : `after ${progress.attempts} tries`;
      serverLog(`webhook delivery ${id} of ${event} of ${app} to ${shownUrl(hook.url)} failed ${tried}: ${progress.error}`);
    }
  }

  private record(id: string, progress: DeliveryProgress): void {
    try {
      this.services.state.webhooks.update(id, progress);
    } catch (error) {
      serverLog(`webhook delivery ${id}: its outcome (${progress.status}) was not recorded: ${(error as Error).message}`);
    }
  }
}

interface SignedRequest {
  url: string;
  headers: Record<string, string>;
  body: string;
}

/** The POST of `body` to `hook`: signed, and a user name and password in its URL sent as Basic authorization (fetch takes no URL with them). */
function signedRequest(hook: Hook, id: string, event: EventName, body: string): SignedRequest {
  const url = new URL(hook.url);
  const headers: Record<string, string> = {
    'Content-Type': 'application/json',
    'User-Agent': 'upaas',
    'X-Upaas-Event': event,
    'X-Upaas-Delivery': id,
    'X-Upaas-Signature': signature(hook.secret, body),
  };
  if (url.username || url.password) {
    const login = `${decoded(url.username)}:${decoded(url.password)}`;
    headers.Authorization = `Basic ${Buffer.from(login).toString('base64')}`;
    url.username = '';
    url.password = '';
  }
  return { url: url.toString(), headers, body };
}

/** One try: the POST, never following a redirect, within `timeout` seconds; `stop` aborts it (error null then). */
async function post(request: SignedRequest, timeout: number, stop: AbortSignal): Promise<Answer> {
  const timer = AbortSignal.timeout(timeout * 1000);
  const signal = AbortSignal.any([stop, timer]);
  let response: Response;
  try {
    response = await fetch(request.url, { method: 'POST', headers: request.headers, body: request.body, redirect: 'manual', signal });
  } catch (error) {
    if (stop.aborted) return { ok: false, code: null, error: null };
    if (timer.aborted) return { ok: false, code: null, error: `no answer within ${timeout} s` };
    return { ok: false, code: null, error: requestFailure(error) };
  }
  const code = response.status;
  if (code >= 200 && code < 300) {
    await response.body?.cancel().catch(() => undefined);
    return { ok: true, code, error: null };
  }
  const excerpt = await answerStart(response.body);
  const redirect = code >= 300 && code < 400 ? ' (a redirect: redirects are not followed)' : '';
  return { ok: false, code, error: `HTTP ${code}${redirect}${excerpt ? `: ${excerpt}` : ''}` };
}

/** The start of a receiver's answer as one short line: at most ANSWER_BYTES are read, ANSWER_SHOWN characters kept. */
async function answerStart(body: ReadableStream<Uint8Array> | null): Promise<string> {
  if (!body) return '';
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let bytes = 0;
  try {
    while (bytes < ANSWER_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
      bytes += value.length;
    }
  } catch {
    // what came is enough; a receiver that stops mid-answer has failed already
  } finally {
    await reader.cancel().catch(() => undefined);
  }
  const text = Buffer.concat(chunks).subarray(0, ANSWER_BYTES).toString('utf8').replace(/[\p{Cc}\s]+/gu, ' ').trim();
  return text.length > ANSWER_SHOWN ? `${text.slice(0, ANSWER_SHOWN)}...` : text;
}

/** Why fetch failed, from its cause (a refused connection, an unknown host, a TLS error), not its bare "fetch failed". */
function requestFailure(error: unknown): string {
  const cause = (error as { cause?: unknown }).cause;
  const inner = cause instanceof AggregateError ? (cause.errors[0] as unknown) : cause;
  if (inner instanceof Error) return inner.message || ((inner as NodeJS.ErrnoException).code ?? String(error));
  return (error as Error).message;
}
