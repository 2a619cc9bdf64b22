/** Package records and each app's current package. */
import type { Db } from './db.ts';
import { type MadeCurrent, Releases } from './releases.ts';

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
  /** Whether its archive is still stored (retention or `packages delete` may have removed it; the record stays). */
  file: boolean;
}

/** Why a package cannot become current again. */
export class PackageStateError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PackageStateError';
  }
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
  file_deleted_at: string | null;
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
  file: row.file_deleted_at === null,
});

export class Packages {
  private readonly releases: Releases;

  constructor(private readonly db: Db) {
    this.releases = new Releases(db);
  }

  /**
   * Records a built package and makes it the app's current one as a new
   * release, in one transaction. A build whose archive is byte for byte a
   * package the app has (the same id) makes that one current, its file
   * (written again under the same key) kept. `frames` is its archive's frame
   * index (opaque here: archive/frames.ts reads it).
   */
  addAsCurrent(pkg: Omit<PackageRecord, 'current' | 'file'>, by: string | null, frames: string | null = null): MadeCurrent {
    return this.db
      .transaction(() => {
        this.db.prepare('INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)').run(pkg.app, pkg.createdAt);
        this.db
          .prepare(
            `INSERT INTO packages (app, id, parent, fresh, revision, author, date, description, changelog,
               interpreter_type, interpreter_version, bytes, storage_key, compression, created_at, metadata, build_id)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT (app, id) DO UPDATE SET file_deleted_at = NULL`,
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
        if (frames !== null) {
          this.db.prepare('INSERT OR REPLACE INTO package_frames (app, package, frames) VALUES (?, ?, ?)').run(pkg.app, pkg.id, frames);
        }
        return this.releases.makeCurrent(pkg.app, pkg.id, { kind: 'build', by, build: pkg.buildId, at: pkg.createdAt });
      })
      .immediate();
  }

  /** The frame index recorded with a package's archive, if any. */
  frames(app: string, id: string): string | null {
    const row = this.db.prepare('SELECT frames FROM package_frames WHERE app = ? AND package = ?').get(app, id) as { frames: string } | undefined;
    return row?.frames ?? null;
  }

  /**
   * Makes a kept package current again as a new release (a rollback);
   * refused with a PackageStateError when its file is gone or it is current.
   */
  rollBack(app: string, id: string, by: string | null): MadeCurrent {
    return this.db
      .transaction(() => {
        const pkg = this.get(app, id);
        if (!pkg) throw new PackageStateError(`${app} has no package ${id}`);
        if (pkg.current) throw new PackageStateError(`package ${id.slice(0, 12)} is already the current package of ${app}`);
        if (!pkg.file) throw new PackageStateError(`the file of package ${id.slice(0, 12)} of ${app} was deleted; it cannot become current again`);
        return this.releases.makeCurrent(app, id, { kind: 'rollback', by, build: null, at: new Date().toISOString() });
      })
      .immediate();
  }

  /**
   * Marks a package's file deleted, unless it is (now) current or one of
   * `keep`; true when marked, and the caller then deletes the stored object.
   * Marking first means a crash in between leaves a stray file (the doctor
   * finds and removes it), never a record of a file that is not there.
   */
  markFileDeleted(app: string, id: string, keep: ReadonlySet<string> = new Set()): boolean {
    if (keep.has(id)) return false;
    const result = this.db
      .prepare(
        `UPDATE packages SET file_deleted_at = ? WHERE app = ? AND id = ? AND file_deleted_at IS NULL
           AND id IS NOT (SELECT current_package FROM apps WHERE name = ?)`,
      )
      .run(new Date().toISOString(), app, id, app);
    return result.changes === 1;
  }

  /** The packages of `app` whose id starts with `prefix`, newest first. */
  matching(app: string, prefix: string): PackageRecord[] {
    return (
      this.db.prepare(`${SELECT} WHERE p.app = ? AND substr(p.id, 1, ?) = ? ORDER BY p.created_at DESC, p.rowid DESC`).all(app, prefix.length, prefix) as PackageRow[]
    ).map(toRecord);
  }

  /** Every package record of every app (the doctor checks them against storage). */
  all(): PackageRecord[] {
    return (this.db.prepare(`${SELECT} ORDER BY p.app, p.created_at`).all() as PackageRow[]).map(toRecord);
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
