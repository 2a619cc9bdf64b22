/** Releases: each change of an app's current package (a build, a rollback), numbered per app from 1. */
import type { Db } from './db.ts';

export type ReleaseKind = 'build' | 'rollback';
/** `failed`: its deploy commands failed and the package before it was made current again. */
export type ReleaseStatus = 'ok' | 'failed';

export interface ReleaseRecord {
  app: string;
  version: number;
  package: string;
  kind: ReleaseKind;
  by: string | null;
  createdAt: string;
  build: number | null;
  status: ReleaseStatus;
  /** Why its deploy failed (status failed). */
  failure: string | null;
}

/** A release just made, with the package that was current before it (null: none). */
export interface MadeCurrent {
  release: ReleaseRecord;
  previous: string | null;
}

interface ReleaseRow {
  app: string;
  version: number;
  package: string;
  kind: ReleaseKind;
  created_by: string | null;
  created_at: string;
  build_id: number | null;
  status: ReleaseStatus;
  failure: string | null;
}

const toRecord = (row: ReleaseRow): ReleaseRecord => ({
  app: row.app,
  version: row.version,
  package: row.package,
  kind: row.kind,
  by: row.created_by,
  createdAt: row.created_at,
  build: row.build_id,
  status: row.status,
  failure: row.failure,
});

export class Releases {
  constructor(private readonly db: Db) {}

  /**
   * Makes `pkg` the current package of `app` as its next release. Callers run
   * it inside their own transaction, with the checks that go with it.
   */
  makeCurrent(app: string, pkg: string, release: { kind: ReleaseKind; by: string | null; build: number | null; at: string }): MadeCurrent {
    const { next } = this.db.prepare('SELECT COALESCE(MAX(version), 0) + 1 AS next FROM releases WHERE app = ?').get(app) as { next: number };
    const before = this.db.prepare('SELECT current_package FROM apps WHERE name = ?').get(app) as { current_package: string | null } | undefined;
    this.db
      .prepare('INSERT INTO releases (app, version, package, kind, created_by, created_at, build_id) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(app, next, pkg, release.kind, release.by, release.at, release.build);
    this.db.prepare('UPDATE apps SET current_package = ? WHERE name = ?').run(pkg, app);
    return {
      release: { app, version: next, package: pkg, kind: release.kind, by: release.by, createdAt: release.at, build: release.build, status: 'ok', failure: null },
      previous: before?.current_package ?? null,
    };
  }

  /**
   * Marks release `version` of `app` failed and, if its package is still the
   * current one, makes `previous` current again (null: the app has none
   * then). True when the current package went back.
   */
  fail(app: string, version: number, previous: string | null, failure: string): boolean {
    return this.db
      .transaction(() => {
        const row = this.db.prepare('SELECT package FROM releases WHERE app = ? AND version = ?').get(app, version) as { package: string } | undefined;
        if (!row) return false;
        this.db.prepare("UPDATE releases SET status = 'failed', failure = ? WHERE app = ? AND version = ?").run(failure, app, version);
        return this.db.prepare('UPDATE apps SET current_package = ? WHERE name = ? AND current_package = ?').run(previous, app, row.package).changes === 1;
      })
      .immediate();
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
