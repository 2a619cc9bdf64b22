/** The state of a server: one SQLite database with its record groups. */
import { Apps } from './apps.ts';
import { Builds } from './builds.ts';
import { ConfigVars } from './config-vars.ts';
import { type Db, openDb } from './db.ts';
import { Images } from './images.ts';
import { Packages } from './packages.ts';
import { Releases } from './releases.ts';
import { TreeLayers } from './trees.ts';
import { Users } from './users.ts';
import { WebhookDeliveries } from './webhooks.ts';

export class State {
  readonly apps: Apps;
  readonly builds: Builds;
  readonly packages: Packages;
  readonly releases: Releases;
  readonly configVars: ConfigVars;
  readonly images: Images;
  readonly trees: TreeLayers;
  readonly users: Users;
  readonly webhooks: WebhookDeliveries;

  constructor(readonly db: Db) {
    this.builds = new Builds(db);
    this.packages = new Packages(db);
    this.releases = new Releases(db);
    this.configVars = new ConfigVars(db);
    this.images = new Images(db);
    this.trees = new TreeLayers(db);
    this.users = new Users(db);
    this.webhooks = new WebhookDeliveries(db);
    this.apps = new Apps(db, this.builds);
  }

  static open(stateDir: string): State {
    return new State(openDb(stateDir));
  }

  close(): void {
    this.db.close();
  }
}
