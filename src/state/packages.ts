/** Package records and each app's current package. */
import type { Db } from './db.ts';

export interface ChangelogEntry {
  revision: string;
  author: string;
  date: string;
  subject: string;
}

export interface PackageRecord {
  id: string;
  app: string;
  parent: string | null;
  fresh: boolean;
  revision: string;
  author: string | null;
  date: string | null;
  description: string | null;
  changelog: ChangelogEntry[];
  interpreter: { type: string; version: string };
  bytes: number;
  storageKey: string;
  compression: 'zstd' | 'gzip';
  createdAt: string;
  metadata: unknown;
  buildId: number | null;
  current: boolean;
}

interface PackageRow {
  id: string;
  app: string;
  parent: string | null;
  fresh: number;
  revision: string;
  author: string | null;
  date: string | null;
  description: string | null;
  changelog: string;
  interpreter_type: string;
  interpreter_version: string;
  bytes: number;
  storage_key: string;
  compression: 'zstd' | 'gzip';
  created_at: string;
  metadata: string;
  build_id: number | null;
  current: number;
}

const SELECT = `SELECT p.*, (a.current_package = p.id) AS current FROM packages p JOIN apps a ON a.name = p.app`;

const toRecord = (row: PackageRow): PackageRecord => ({
  id: row.id,
  app: row.app,
  parent: row.parent,
  fresh: row.fresh === 1,
  revision: row.revision,
  author: row.author,
  date: row.date,
  description: row.description,
  changelog: JSON.parse(row.changelog) as ChangelogEntry[],
  interpreter: { type: row.interpreter_type, version: row.interpreter_version },
  bytes: row.bytes,
  storageKey: row.storage_key,
  compression: row.compression,
  createdAt: row.created_at,
  metadata: JSON.parse(row.metadata) as unknown,
  buildId: row.build_id,
  current: row.current === 1,
});

export class Packages {
  constructor(private readonly db: Db) {}

  /** Records a package and makes it the app's current one, in one transaction. */
  addAsCurrent(pkg: Omit<PackageRecord, 'current'>): void {
    this.db
      .transaction(() => {
        this.db.prepare('INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)').run(pkg.app, pkg.createdAt);
        this.db
          .prepare(
            `INSERT INTO packages (app, id, parent, fresh, revision, author, date, description, changelog,
               interpreter_type, interpreter_version, bytes, storage_key, compression, created_at, metadata, build_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            pkg.app,
            pkg.id,
            pkg.parent,
            pkg.fresh ? 1 : 0,
            pkg.revision,
            pkg.author,
            pkg.date,
            pkg.description,
            JSON.stringify(pkg.changelog),
            pkg.interpreter.type,
            pkg.interpreter.version,
            pkg.bytes,
            pkg.storageKey,
            pkg.compression,
            pkg.createdAt,
            JSON.stringify(pkg.metadata),
            pkg.buildId,
          );
        this.db.prepare('UPDATE apps SET current_package = ? WHERE name = ?').run(pkg.id, pkg.app);
      })
      .immediate();
  }

  current(app: string): PackageRecord | null {
    const row = this.db.prepare(`${SELECT} WHERE p.app = ? AND a.current_package = p.id`).get(app) as PackageRow | undefined;
    return row ? toRecord(row) : null;
  }

  get(app: string, id: string): PackageRecord | null {
    const row = this.db.prepare(`${SELECT} WHERE p.app = ? AND p.id = ?`).get(app, id) as PackageRow | undefined;
    return row ? toRecord(row) : null;
  }

  /** Newest first. */
  list(app: string): PackageRecord[] {
    return (this.db.prepare(`${SELECT} WHERE p.app = ? ORDER BY p.created_at DESC, p.rowid DESC`).all(app) as PackageRow[]).map(
      toRecord,
    );
  }
}
