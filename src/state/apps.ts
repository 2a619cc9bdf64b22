/**
 * Apps as a whole: forgetting everything the state holds of a deleted repo
 * (grants, builds with their logs, packages, the current-package pointer), so
 * that a new repo of the same name starts from nothing. What was there is
 * counted under a tombstone in deleted_repos.
 */
import { BusyError, type Builds } from './builds.ts';
import type { Db } from './db.ts';

export interface DeletedRepo {
  name: string;
  deletedAt: string;
  deletedBy: string | null;
  builds: number;
  packages: number;
}

/** What forgetting an app returns: its tombstone, and what of its files the caller removes. */
export interface Forgotten {
  tombstone: DeletedRepo;
  storageKeys: string[];
  buildIds: number[];
}

export class Apps {
  constructor(
    private readonly db: Db,
    private readonly builds: Builds,
  ) {}

  /**
   * Removes every record of `app` in one transaction and returns the storage
   * keys of its packages and its build ids (the caller deletes those objects
   * and log files). Refused with a
   * BusyError while a build of the app runs.
   */
  forget(app: string, by: string | null): Forgotten {
    return this.db
      .transaction(() => {
        const live = this.builds.liveFor(app);
        if (live) throw new BusyError(live);
        const storageKeys = (this.db.prepare('SELECT storage_key FROM packages WHERE app = ?').all(app) as { storage_key: string }[]).map(
          (row) => row.storage_key,
        );
        const buildIds = (this.db.prepare('SELECT id FROM builds WHERE app = ?').all(app) as { id: number }[]).map((row) => row.id);
        this.db.prepare('DELETE FROM releases WHERE app = ?').run(app);
        this.db.prepare('DELETE FROM config_vars WHERE app = ?').run(app);
        this.db.prepare('DELETE FROM webhook_deliveries WHERE app = ?').run(app);
        const packages = this.db.prepare('DELETE FROM packages WHERE app = ?').run(app).changes;
        const builds = this.db.prepare('DELETE FROM builds WHERE app = ?').run(app).changes;
        this.db.prepare('DELETE FROM access WHERE repo = ?').run(app);
        this.db.prepare('DELETE FROM apps WHERE name = ?').run(app);
        const tombstone = { name: app, deletedAt: new Date().toISOString(), deletedBy: by, builds, packages };
        this.db
          .prepare('INSERT INTO deleted_repos (name, deleted_at, deleted_by, builds, packages) VALUES (?, ?, ?, ?, ?)')
          .run(app, tombstone.deletedAt, by, builds, packages);
        return { tombstone, storageKeys, buildIds };
      })
      .immediate();
  }

  /** Whether the state holds anything of `app` (grants, builds, packages). */
  known(app: string): boolean {
    const row = this.db
      .prepare(
        `SELECT EXISTS (SELECT 1 FROM builds WHERE app = ?) OR EXISTS (SELECT 1 FROM packages WHERE app = ?)
           OR EXISTS (SELECT 1 FROM access WHERE repo = ?) OR EXISTS (SELECT 1 FROM apps WHERE name = ?)
           OR EXISTS (SELECT 1 FROM config_vars WHERE app = ?) AS known`,
      )
      .get(app, app, app, app, app) as { known: number };
    return row.known === 1;
  }

  /** Every app name the state holds records of. */
  names(): string[] {
    return (
      this.db
        .prepare('SELECT name FROM apps UNION SELECT app FROM builds UNION SELECT app FROM packages UNION SELECT repo FROM access UNION SELECT app FROM config_vars ORDER BY 1')
        .all() as { name: string }[]
    ).map((row) => row.name);
  }

  /** Tombstones of deleted repos, newest first. */
  deleted(): DeletedRepo[] {
    return (
      this.db.prepare('SELECT name, deleted_at, deleted_by, builds, packages FROM deleted_repos ORDER BY id DESC').all() as {
        name: string;
        deleted_at: string;
        deleted_by: string | null;
        builds: number;
        packages: number;
      }[]
    ).map((row) => ({ name: row.name, deletedAt: row.deleted_at, deletedBy: row.deleted_by, builds: row.builds, packages: row.packages }));
  }
}
