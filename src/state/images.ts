/** The system images this server stored: retention deletes those that a newer image replaced. */
import type { Db } from './db.ts';

export interface ImageRecord {
  key: string;
  bytes: number;
  createdAt: string;
}

export class Images {
  constructor(private readonly db: Db) {}

  /** Records a stored image (again, when it was rebuilt under the same key), with its archive's frame index (opaque here). */
  add(key: string, bytes: number, frames: string | null = null): void {
    this.db
      .prepare(
        `INSERT INTO images (key, bytes, created_at, frames) VALUES (?, ?, ?, ?)
         ON CONFLICT (key) DO UPDATE SET bytes = excluded.bytes, created_at = excluded.created_at, frames = excluded.frames`,
      )
      .run(key, bytes, new Date().toISOString(), frames);
  }

  /** The frame index recorded with an image's archive, if any. */
  frames(key: string): string | null {
    const row = this.db.prepare('SELECT frames FROM images WHERE key = ?').get(key) as { frames: string | null } | undefined;
    return row?.frames ?? null;
  }

  list(): ImageRecord[] {
    return (this.db.prepare('SELECT key, bytes, created_at FROM images ORDER BY created_at').all() as { key: string; bytes: number; created_at: string }[]).map(
      (row) => ({ key: row.key, bytes: row.bytes, createdAt: row.created_at }),
    );
  }

  forget(key: string): void {
    this.db.prepare('DELETE FROM images WHERE key = ?').run(key);
  }
}
