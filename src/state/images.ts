/** The system images this server stored: retention deletes those that a newer image replaced. */
import type { Db } from './db.ts';

export interface ImageRecord {
  key: string;
  bytes: number;
  createdAt: string;
}

export class Images {
  constructor(private readonly db: Db) {}

  /** Records a stored image (again, when it was rebuilt under the same key). */
  add(key: string, bytes: number): void {
    this.db
      .prepare('INSERT INTO images (key, bytes, created_at) VALUES (?, ?, ?) ON CONFLICT (key) DO UPDATE SET bytes = excluded.bytes, created_at = excluded.created_at')
      .run(key, bytes, new Date().toISOString());
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
