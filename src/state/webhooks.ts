/**
 * Webhook deliveries: one record per event and hook, pending until it was
 * delivered (a 2xx) or its last try failed, with the tries made and the last
 * response code and error. The newest `keep` of each app are kept; older ones
 * go when a new one is added.
 */
import type { Db } from './db.ts';

export type DeliveryStatus = 'pending' | 'delivered' | 'failed';

export interface DeliveryRecord {
  id: string;
  app: string;
  event: string;
  url: string;
  /** The exact body sent (JSON). */
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  responseCode: number | null;
  error: string | null;
  createdAt: string;
  finishedAt: string | null;
}

/** What a try left: the tries made so far, the last answer's code and error, and whether it is over. */
export interface DeliveryProgress {
  status: DeliveryStatus;
  attempts: number;
  responseCode: number | null;
  error: string | null;
}

interface DeliveryRow {
  id: string;
  app: string;
  event: string;
  url: string;
  payload: string;
  status: DeliveryStatus;
  attempts: number;
  response_code: number | null;
  error: string | null;
  created_at: string;
  finished_at: string | null;
}

const toRecord = (row: DeliveryRow): DeliveryRecord => ({
  id: row.id,
  app: row.app,
  event: row.event,
  url: row.url,
  payload: row.payload,
  status: row.status,
  attempts: row.attempts,
  responseCode: row.response_code,
  error: row.error,
  createdAt: row.created_at,
  finishedAt: row.finished_at,
});

export class WebhookDeliveries {
  constructor(private readonly db: Db) {}

  /** Records a pending delivery and drops the app's deliveries beyond the newest `keep`, in one transaction. */
  add(delivery: { id: string; app: string; event: string; url: string; payload: string; createdAt: string }, keep: number): void {
    this.db
      .transaction(() => {
        this.db
          .prepare("INSERT INTO webhook_deliveries (id, app, event, url, payload, status, attempts, created_at) VALUES (?, ?, ?, ?, ?, 'pending', 0, ?)")
          .run(delivery.id, delivery.app, delivery.event, delivery.url, delivery.payload, delivery.createdAt);
        this.db
          .prepare(
            `DELETE FROM webhook_deliveries WHERE app = ? AND rowid NOT IN
               (SELECT rowid FROM webhook_deliveries WHERE app = ? ORDER BY created_at DESC, rowid DESC LIMIT ?)`,
          )
          .run(delivery.app, delivery.app, keep);
      })
      .immediate();
  }

  /** Records a try's outcome; a status other than pending ends the delivery (finished_at set). */
  update(id: string, progress: DeliveryProgress): void {
    this.db
      .prepare('UPDATE webhook_deliveries SET status = ?, attempts = ?, response_code = ?, error = ?, finished_at = ? WHERE id = ?')
      .run(progress.status, progress.attempts, progress.responseCode, progress.error, progress.status === 'pending' ? null : new Date().toISOString(), id);
  }

  /**
   * Marks failed, with `error`, the deliveries still pending that were made
   * before `before` (ISO 8601): those whose process ended before they were
   * over. Returns how many.
   */
  failStale(before: string, error: string): number {
    return this.db
      .prepare("UPDATE webhook_deliveries SET status = 'failed', error = ?, finished_at = ? WHERE status = 'pending' AND created_at < ?")
      .run(error, new Date().toISOString(), before).changes;
  }

  get(id: string): DeliveryRecord | null {
    const row = this.db.prepare('SELECT * FROM webhook_deliveries WHERE id = ?').get(id) as DeliveryRow | undefined;
    return row ? toRecord(row) : null;
  }

  /** The app's deliveries, newest first. */
  list(app: string): DeliveryRecord[] {
    return (this.db.prepare('SELECT * FROM webhook_deliveries WHERE app = ? ORDER BY created_at DESC, rowid DESC').all(app) as DeliveryRow[]).map(toRecord);
  }
}
