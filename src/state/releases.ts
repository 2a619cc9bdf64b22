/** Releases: each change of an app's current package (a build, a rollback), numbered per app from 1. */
import type { Db } from './db.ts';

export type ReleaseKind = 'build' | 'rollback';

export interface ReleaseRecord {
  app: string;
  version: number;
  package: string;
  kind: ReleaseKind;
  by: string | null;
  createdAt: string;
  build: number | null;
}

interface ReleaseRow {
  app: string;
  version: number;
  package: string;
  kind: ReleaseKind;
  created_by: string | null;
  created_at: string;
  build_id: number | null;
}

const toRecord = (row: ReleaseRow): ReleaseRecord => ({
  app: row.app,
  version: row.version,
  package: row.package,
  kind: row.kind,
  by: row.created_by,
  createdAt: row.created_at,
  build: row.build_id,
});

export class Releases {
  constructor(private readonly db: Db) {}

  /**
   * Makes `pkg` the current package of `app` as its next release. Callers run
   * it inside their own transaction, with the checks that go with it.
   */
  makeCurrent(app: string, pkg: string, release: { kind: ReleaseKind; by: string | null; build: number | null; at: string }): ReleaseRecord {
    const { next } = this.db.prepare('SELECT COALESCE(MAX(version), 0) + 1 AS next FROM releases WHERE app = ?').get(app) as { next: number };
    this.db
      .prepare('INSERT INTO releases (app, version, package, kind, created_by, created_at, build_id) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(app, next, pkg, release.kind, release.by, release.at, release.build);
    this.db.prepare('UPDATE apps SET current_package = ? WHERE name = ?').run(pkg, app);
    return { app, version: next, package: pkg, kind: release.kind, by: release.by, createdAt: release.at, build: release.build };
  }

  /** Newest first. */
  list(app: string): ReleaseRecord[] {
    return (this.db.prepare('SELECT * FROM releases WHERE app = ? ORDER BY version DESC').all(app) as ReleaseRow[]).map(toRecord);
  }

  latest(app: string): ReleaseRecord | null {
    const row = this.db.prepare('SELECT * FROM releases WHERE app = ? ORDER BY version DESC LIMIT 1').get(app) as ReleaseRow | undefined;
    return row ? toRecord(row) : null;
  }
}
