/** Build records: one row per build attempt, with status, error and log (BuildLog keeps it within builder.logsize). */
import type { ErrorKind } from '../builder/errors.ts';
import type { Db } from './db.ts';
import { processIdentity, stillRunning } from './process-identity.ts';

export interface BuildRecord {
  id: number;
  app: string;
  status: 'running' | 'succeeded' | 'failed';
  fresh: boolean;
  revision: string | null;
  requestedBy: string | null;
  pid: number | null;
  startedAt: string;
  finishedAt: string | null;
  errorKind: ErrorKind | null;
  errorMessage: string | null;
  packageId: string | null;
}

interface BuildRow {
  id: number;
  app: string;
  status: BuildRecord['status'];
  fresh: number;
  revision: string | null;
  requested_by: string | null;
  pid: number | null;
  started_at: string;
  finished_at: string | null;
  error_kind: ErrorKind | null;
  error_message: string | null;
  package_id: string | null;
}

const COLUMNS = 'id, app, status, fresh, revision, requested_by, pid, started_at, finished_at, error_kind, error_message, package_id';

const toRecord = (row: BuildRow): BuildRecord => ({
  id: row.id,
  app: row.app,
  status: row.status,
  fresh: row.fresh === 1,
  revision: row.revision,
  requestedBy: row.requested_by,
  pid: row.pid,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  errorKind: row.error_kind,
  errorMessage: row.error_message,
  packageId: row.package_id,
});

export class BusyError extends Error {
  constructor(readonly running: BuildRecord) {
    super(`build ${running.id} of ${running.app} is running (pid ${running.pid})`);
    this.name = 'BusyError';
  }
}

/** Whether the process that recorded a running build still runs (not just its PID). */
function alive(row: { pid: number | null; owner: string | null }): boolean {
  if (row.owner !== null) return stillRunning(row.owner);
  // Rows from before migration 3: the PID alone.
  if (row.pid === null) return false;
  try {
    process.kill(row.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

type RunningRow = BuildRow & { owner: string | null; base_package: string | null; base_image: string | null; tree_layer: string | null };

const INTERRUPTED = 'the build was interrupted (its process is gone: the server or the build command stopped or crashed)';

export class Builds {
  constructor(private readonly db: Db) {}

  /**
   * Records a new running build of `app`, refusing while another live build of
   * the app runs. A build left "running" by a process that died is marked
   * failed (system error) first.
   */
  start(app: string, options: { fresh: boolean; requestedBy?: string; pid?: number }): BuildRecord {
    const now = new Date().toISOString();
    return this.db
      .transaction(() => {
        this.db.prepare('INSERT OR IGNORE INTO apps (name, created_at) VALUES (?, ?)').run(app, now);
        const live = this.liveFor(app);
        if (live) throw new BusyError(live);
        const pid = options.pid ?? process.pid;
        const info = this.db
          .prepare(
            'INSERT INTO builds (app, status, fresh, requested_by, pid, owner, started_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
          )
          .run(app, 'running', options.fresh ? 1 : 0, options.requestedBy ?? null, pid, processIdentity(pid), now);
        return this.get(app, Number(info.lastInsertRowid)) as BuildRecord;
      })
      .immediate();
  }

  /**
   * Marks every build left "running" by a process that is gone as failed
   * (system error) and returns them; the live ones are untouched.
   */
  reapStale(): BuildRecord[] {
    return this.db.transaction(() => this.reap(this.running()).stale.map(toRecord)).immediate();
  }

  /** The live build of `app`, if one runs (builds of processes that are gone are marked failed first). */
  liveFor(app: string): BuildRecord | null {
    const [live] = this.reap(this.running(app)).live;
    return live ? toRecord(live) : null;
  }

  /** The ids of builds recorded as running whose process still runs. */
  liveIds(): Set<number> {
    return new Set(this.running().filter(alive).map((row) => row.id));
  }

  /** The apps with a live build. Changes nothing (liveFor marks the builds of dead processes failed). */
  liveApps(): Set<string> {
    return new Set(this.running().filter(alive).map((row) => row.app));
  }

  /** Builds recorded as running (of `app`, or of every app). */
  private running(app?: string): RunningRow[] {
    const where = app === undefined ? '' : 'app = ? AND ';
    return this.db
      .prepare(`SELECT ${COLUMNS}, owner, base_package, base_image, tree_layer FROM builds WHERE ${where}status = 'running'`)
      .all(...(app === undefined ? [] : [app])) as RunningRow[];
  }

  /** Marks those of `rows` whose process is gone failed; says which were which. */
  private reap(rows: RunningRow[]): { live: RunningRow[]; stale: RunningRow[] } {
    const live = rows.filter(alive);
    const stale = rows.filter((row) => !live.includes(row));
    for (const row of stale) this.finish(row.id, { status: 'failed', errorKind: 'system', errorMessage: INTERRUPTED });
    return { live, stale };
  }

  /** `basePackage` / `baseImage`: what the build starts from, which retention keeps while it runs. */
  update(id: number, fields: { revision?: string; fresh?: boolean; basePackage?: string | null; baseImage?: string | null }): void {
    if (fields.revision !== undefined) this.db.prepare('UPDATE builds SET revision = ? WHERE id = ?').run(fields.revision, id);
    if (fields.fresh !== undefined) this.db.prepare('UPDATE builds SET fresh = ? WHERE id = ?').run(fields.fresh ? 1 : 0, id);
    if (fields.basePackage !== undefined) this.db.prepare('UPDATE builds SET base_package = ? WHERE id = ?').run(fields.basePackage, id);
    if (fields.baseImage !== undefined) this.db.prepare('UPDATE builds SET base_image = ? WHERE id = ?').run(fields.baseImage, id);
  }

  /**
   * What live builds start from: package ids and image storage keys that must
   * stay, and the cached tree layers they mounted. Changes nothing.
   */
  liveBases(): { packages: Set<string>; images: Set<string>; trees: Set<string> } {
    const live = this.running().filter(alive);
    const of = (field: 'base_package' | 'base_image' | 'tree_layer') => new Set(live.flatMap((row) => (row[field] ? [row[field]] : [])));
    return { packages: of('base_package'), images: of('base_image'), trees: of('tree_layer') };
  }

  /**
   * Deletes the stored log text of `app`'s finished builds older than its
   * newest `keep` builds, and returns their ids (the caller removes their log
   * files); the records stay, marked.
   */
  pruneLogs(app: string, keep: number): number[] {
    return this.db
      .transaction(() => {
        const ids = (
          this.db
            .prepare(
              `SELECT id FROM builds WHERE app = ? AND status <> 'running' AND log_deleted_at IS NULL
                 AND id NOT IN (SELECT id FROM builds WHERE app = ? ORDER BY id DESC LIMIT ?)`,
            )
            .all(app, app, keep) as { id: number }[]
        ).map((row) => row.id);
        const now = new Date().toISOString();
        for (const id of ids) this.db.prepare('UPDATE builds SET log = NULL, log_deleted_at = ? WHERE id = ?').run(now, id);
        return ids;
      })
      .immediate();
  }

  /** Whether retention deleted the log of build `id`. */
  logDeleted(id: number): boolean {
    const row = this.db.prepare('SELECT log_deleted_at FROM builds WHERE id = ?').get(id) as { log_deleted_at: string | null } | undefined;
    return row?.log_deleted_at != null;
  }

  /** Builds recorded as running whose process is gone, left as they are (the doctor reports them; reapStale marks them). */
  stale(): BuildRecord[] {
    return this.running()
      .filter((row) => !alive(row))
      .map(toRecord);
  }

  finish(
    id: number,
    result: {
      status: 'succeeded' | 'failed';
      errorKind?: ErrorKind;
      errorMessage?: string;
      packageId?: string;
      log?: string;
    },
  ): void {
    this.db
      .prepare(
        `UPDATE builds SET status = ?, finished_at = ?, error_kind = ?, error_message = ?, package_id = ?,
           log = COALESCE(?, log) WHERE id = ?`,
      )
      .run(
        result.status,
        new Date().toISOString(),
        result.errorKind ?? null,
        result.errorMessage ?? null,
        result.packageId ?? null,
        result.log ?? null,
        id,
      );
  }

  get(app: string, id: number): BuildRecord | null {
    const row = this.db.prepare(`SELECT ${COLUMNS} FROM builds WHERE app = ? AND id = ?`).get(app, id) as BuildRow | undefined;
    return row ? toRecord(row) : null;
  }

  latest(app: string): BuildRecord | null {
    const row = this.db
      .prepare(`SELECT ${COLUMNS} FROM builds WHERE app = ? ORDER BY id DESC LIMIT 1`)
      .get(app) as BuildRow | undefined;
    return row ? toRecord(row) : null;
  }

  list(app: string): BuildRecord[] {
    return (this.db.prepare(`SELECT ${COLUMNS} FROM builds WHERE app = ? ORDER BY id DESC`).all(app) as BuildRow[]).map(toRecord);
  }

  log(id: number): string | null {
    const row = this.db.prepare('SELECT log FROM builds WHERE id = ?').get(id) as { log: string | null } | undefined;
    return row?.log ?? null;
  }
}
