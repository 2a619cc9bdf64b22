/**
 * The state database (SQLite under paths.state): opening it and applying the
 * schema migrations in order, each once, inside a transaction.
 */
import { chmodSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';

export type Db = Database.Database;

/** Append-only: never edit a migration that has shipped, add a new one. */
const MIGRATIONS: string[] = [
  `CREATE TABLE apps (
     name TEXT PRIMARY KEY,
     current_package TEXT,
     created_at TEXT NOT NULL
   );
   CREATE TABLE builds (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     app TEXT NOT NULL REFERENCES apps(name),
     status TEXT NOT NULL CHECK (status IN ('running', 'succeeded', 'failed')),
     fresh INTEGER NOT NULL,
     revision TEXT,
     requested_by TEXT,
     pid INTEGER,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     error_kind TEXT CHECK (error_kind IN ('user', 'system')),
     error_message TEXT,
     package_id TEXT,
     log TEXT
   );
   CREATE INDEX builds_by_app ON builds(app, id);
   CREATE TABLE packages (
     app TEXT NOT NULL REFERENCES apps(name),
     id TEXT NOT NULL,
     parent TEXT,
     fresh INTEGER NOT NULL,
     revision TEXT NOT NULL,
     author TEXT,
     date TEXT,
     description TEXT,
     changelog TEXT NOT NULL,
     interpreter_type TEXT NOT NULL,
     interpreter_version TEXT NOT NULL,
     bytes INTEGER NOT NULL,
     storage_key TEXT NOT NULL,
     compression TEXT NOT NULL,
     created_at TEXT NOT NULL,
     metadata TEXT NOT NULL,
     build_id INTEGER REFERENCES builds(id),
     PRIMARY KEY (app, id)
   );
   CREATE INDEX packages_by_app ON packages(app, created_at);`,
  `CREATE TABLE users (
     name TEXT PRIMARY KEY,
     admin INTEGER NOT NULL DEFAULT 0,
     created_at TEXT NOT NULL
   );
   CREATE TABLE keys (
     fingerprint TEXT PRIMARY KEY,
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     algorithm TEXT NOT NULL,
     public_key TEXT NOT NULL,
     comment TEXT,
     created_at TEXT NOT NULL
   );
   CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     hash TEXT NOT NULL,
     note TEXT,
     created_at TEXT NOT NULL,
     last_used_at TEXT
   );
   CREATE TABLE access (
     repo TEXT NOT NULL,
     user TEXT NOT NULL REFERENCES users(name) ON DELETE CASCADE,
     level TEXT NOT NULL CHECK (level IN ('read', 'write')),
     PRIMARY KEY (repo, user)
   );`,
  // 3: who runs a build, robust to PID reuse (see process-identity.ts).
  `ALTER TABLE builds ADD COLUMN owner TEXT;`,
  // 4: what a deleted repo left: a tombstone no new repo of the same name inherits.
  `CREATE TABLE deleted_repos (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     name TEXT NOT NULL,
     deleted_at TEXT NOT NULL,
     deleted_by TEXT,
     builds INTEGER NOT NULL,
     packages INTEGER NOT NULL
   );`,
  // 5: day two. Releases (each change of an app's current package), package
  // files and build logs that retention deleted (their records stay), what
  // each build started from (retention keeps it), the system images this
  // server stored (retention deletes those a newer one replaced), and the apps' config vars.
  `CREATE TABLE releases (
     app TEXT NOT NULL REFERENCES apps(name),
     version INTEGER NOT NULL,
     package TEXT NOT NULL,
     kind TEXT NOT NULL CHECK (kind IN ('build', 'rollback')),
     created_by TEXT,
     created_at TEXT NOT NULL,
     build_id INTEGER,
     PRIMARY KEY (app, version)
   );
   INSERT INTO releases (app, version, package, kind, created_by, created_at, build_id)
     SELECT a.name, 1, a.current_package, 'build', b.requested_by, p.created_at, p.build_id
     FROM apps a JOIN packages p ON p.app = a.name AND p.id = a.current_package
     LEFT JOIN builds b ON b.id = p.build_id;
   ALTER TABLE packages ADD COLUMN file_deleted_at TEXT;
   ALTER TABLE builds ADD COLUMN log_deleted_at TEXT;
   ALTER TABLE builds ADD COLUMN base_package TEXT;
   ALTER TABLE builds ADD COLUMN base_image TEXT;
   CREATE TABLE images (
     key TEXT PRIMARY KEY,
     bytes INTEGER NOT NULL,
     created_at TEXT NOT NULL
   );
   CREATE TABLE config_vars (
     app TEXT NOT NULL,
     name TEXT NOT NULL,
     value TEXT NOT NULL,
     updated_at TEXT NOT NULL,
     updated_by TEXT,
     PRIMARY KEY (app, name)
   );`,
  // 6: delivery. A release whose deploy commands failed (the previous package
  // was made current again), and every webhook delivery with its outcome.
  `ALTER TABLE releases ADD COLUMN status TEXT NOT NULL DEFAULT 'ok' CHECK (status IN ('ok', 'failed'));
   ALTER TABLE releases ADD COLUMN failure TEXT;
   CREATE TABLE webhook_deliveries (
     id TEXT PRIMARY KEY,
     app TEXT NOT NULL,
     event TEXT NOT NULL,
     url TEXT NOT NULL,
     payload TEXT NOT NULL,
     status TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
     attempts INTEGER NOT NULL DEFAULT 0,
     response_code INTEGER,
     error TEXT,
     created_at TEXT NOT NULL,
     finished_at TEXT
   );
   CREATE INDEX webhook_deliveries_app ON webhook_deliveries (app, created_at);`,
  // 7: the tree cache (builder/tree-cache.ts). Each layer is a folder under
  // STATE/trees; a layer over its parents is the unpacked tree of `source` (a
  // package id, or the system image's storage key). A running build keeps the
  // layers it mounted.
  `CREATE TABLE tree_layers (
     dir TEXT PRIMARY KEY,
     parent TEXT,
     source TEXT NOT NULL,
     app TEXT,
     depth INTEGER NOT NULL,
     bytes INTEGER NOT NULL,
     created_at TEXT NOT NULL,
     used_at TEXT NOT NULL
   );
   CREATE INDEX tree_layers_source ON tree_layers (source);
   ALTER TABLE builds ADD COLUMN tree_layer TEXT;`,
  // 8: the frame index of a package's (an image's) archive (archive/frames.ts),
  // as JSON: a build over its cached tree copies the frames of what it left alone.
  `ALTER TABLE images ADD COLUMN frames TEXT;
   CREATE TABLE package_frames (
     app TEXT NOT NULL,
     package TEXT NOT NULL,
     frames TEXT NOT NULL,
     PRIMARY KEY (app, package),
     FOREIGN KEY (app, package) REFERENCES packages (app, id) ON DELETE CASCADE
   );`,
];

export function openDb(stateDir: string): Db {
  mkdirSync(stateDir, { recursive: true });
  // The database (users, token hashes, every app's env and files), the logs and
  // the host key live here: root's alone.
  chmodSync(stateDir, 0o700);
  const db = new Database(join(stateDir, 'upaas.sqlite'));
  db.pragma('journal_mode = WAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db);
  return db;
}

/** Applies the migrations the database has not had, up to `target` (default: all). */
export function migrate(db: Db, target = MIGRATIONS.length): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let version = current; version < target; version++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    }).immediate();
  }
}
