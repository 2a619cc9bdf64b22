/** The state of a server: one SQLite database with its record groups. */
import { Builds } from './builds.ts';
import { type Db, openDb } from './db.ts';
import { Packages } from './packages.ts';

export class State {
  readonly builds: Builds;
  readonly packages: Packages;

  constructor(readonly db: Db) {
    this.builds = new Builds(db);
    this.packages = new Packages(db);
  }

  static open(stateDir: string): State {
    return new State(openDb(stateDir));
  }

  close(): void {
    this.db.close();
  }
}
