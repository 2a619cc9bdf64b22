/** An app's config vars: build-time variables of its own actions, set by its writers. */
import type { Db } from './db.ts';

export class ConfigVars {
  constructor(private readonly db: Db) {}

  /** Name -> value, by name. */
  get(app: string): Record<string, string> {
    const rows = this.db.prepare('SELECT name, value FROM config_vars WHERE app = ? ORDER BY name').all(app) as { name: string; value: string }[];
    return Object.fromEntries(rows.map((row) => [row.name, row.value]));
  }

  /**
   * Sets and unsets variables in one transaction. `check` sees the whole
   * result first and may throw to refuse it (nothing is changed then).
   */
  change(app: string, change: { set?: Record<string, string>; unset?: string[]; by: string | null }, check: (result: Record<string, string>) => void): Record<string, string> {
    return this.db
      .transaction(() => {
        const result = { ...this.get(app) };
        for (const name of change.unset ?? []) delete result[name];
        Object.assign(result, change.set ?? {});
        check(result);
        const now = new Date().toISOString();
        for (const name of change.unset ?? []) this.db.prepare('DELETE FROM config_vars WHERE app = ? AND name = ?').run(app, name);
        for (const [name, value] of Object.entries(change.set ?? {})) {
          this.db
            .prepare(
              `INSERT INTO config_vars (app, name, value, updated_at, updated_by) VALUES (?, ?, ?, ?, ?)
               ON CONFLICT (app, name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at, updated_by = excluded.updated_by`,
            )
            .run(app, name, value, now, change.by);
        }
        return result;
      })
      .immediate();
  }
}
