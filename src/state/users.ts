/**
 * Users, their SSH keys and HTTP tokens, and their access to repos. Admins may
 * do everything; other users get read or write on a repo from an admin.
 */
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Db } from './db.ts';

export type AccessLevel = 'none' | 'read' | 'write' | 'admin';

export interface User {
  name: string;
  admin: boolean;
  createdAt: string;
}

export interface KeyRecord {
  fingerprint: string;
  user: string;
  algorithm: string;
  publicKey: string;
  comment: string | null;
  createdAt: string;
}

export interface TokenRecord {
  id: string;
  user: string;
  note: string | null;
  createdAt: string;
  lastUsedAt: string | null;
}

export const USER_NAME = /^[a-z][a-z0-9._-]{0,62}$/;

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

/** SHA256:base64 fingerprint of an SSH public key blob, as `ssh-keygen -l` prints it. */
export function fingerprintOf(blob: Buffer): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

const hashToken = (secret: string) => createHash('sha256').update(secret).digest('hex');

export class Users {
  constructor(private readonly db: Db) {}

  add(name: string, admin = false): User {
    if (!USER_NAME.test(name)) throw new UserError(`invalid user name ${JSON.stringify(name)}: expected lowercase letters, digits, ".", "_", "-", starting with a letter`);
    if (this.get(name)) throw new UserError(`user ${name} exists already`);
    const createdAt = new Date().toISOString();
    this.db.prepare('INSERT INTO users (name, admin, created_at) VALUES (?, ?, ?)').run(name, admin ? 1 : 0, createdAt);
    return { name, admin, createdAt };
  }

  get(name: string): User | null {
    const row = this.db.prepare('SELECT name, admin, created_at FROM users WHERE name = ?').get(name) as
      | { name: string; admin: number; created_at: string }
      | undefined;
    return row ? { name: row.name, admin: row.admin === 1, createdAt: row.created_at } : null;
  }

  list(): User[] {
    return (this.db.prepare('SELECT name, admin, created_at FROM users ORDER BY name').all() as { name: string; admin: number; created_at: string }[]).map(
      (row) => ({ name: row.name, admin: row.admin === 1, createdAt: row.created_at }),
    );
  }

  remove(name: string): void {
    if (this.db.prepare('DELETE FROM users WHERE name = ?').run(name).changes === 0) throw new UserError(`no user named ${name}`);
  }

  setAdmin(name: string, admin: boolean): void {
    this.db.prepare('UPDATE users SET admin = ? WHERE name = ?').run(admin ? 1 : 0, name);
  }

  addKey(user: string, key: Omit<KeyRecord, 'user' | 'createdAt'>): KeyRecord {
    if (!this.get(user)) throw new UserError(`no user named ${user}`);
    const existing = this.keyByFingerprint(key.fingerprint);
    // Which user has it is not the caller's to know (they may be any user adding "their" key).
    if (existing) throw new UserError(existing.user === user ? `${user} has key ${key.fingerprint} already` : `key ${key.fingerprint} is in use: add a key of your own`);
    const record = { ...key, user, createdAt: new Date().toISOString() };
    this.db
      .prepare('INSERT INTO keys (fingerprint, user, algorithm, public_key, comment, created_at) VALUES (?, ?, ?, ?, ?, ?)')
      .run(record.fingerprint, user, record.algorithm, record.publicKey, record.comment, record.createdAt);
    return record;
  }

  keyByFingerprint(fingerprint: string): KeyRecord | null {
    const row = this.db.prepare('SELECT * FROM keys WHERE fingerprint = ?').get(fingerprint) as KeyRow | undefined;
    return row ? toKey(row) : null;
  }

  keys(user: string): KeyRecord[] {
    return (this.db.prepare('SELECT * FROM keys WHERE user = ? ORDER BY created_at').all(user) as KeyRow[]).map(toKey);
  }

  removeKey(user: string, fingerprint: string): void {
    if (this.db.prepare('DELETE FROM keys WHERE user = ? AND fingerprint = ?').run(user, fingerprint).changes === 0) {
      throw new UserError(`${user} has no key ${fingerprint}`);
    }
  }

  /** Creates a token; the secret is returned once and only its hash is kept. */
  createToken(user: string, note: string | null): { id: string; secret: string } {
    if (!this.get(user)) throw new UserError(`no user named ${user}`);
    const id = randomBytes(6).toString('hex');
    const secret = `upaas_${id}_${randomBytes(24).toString('base64url')}`;
    this.db
      .prepare('INSERT INTO tokens (id, user, hash, note, created_at) VALUES (?, ?, ?, ?, ?)')
      .run(id, user, hashToken(secret), note, new Date().toISOString());
    return { id, secret };
  }

  tokens(user: string): TokenRecord[] {
    return (
      this.db.prepare('SELECT id, user, note, created_at, last_used_at FROM tokens WHERE user = ? ORDER BY created_at').all(user) as {
        id: string;
        user: string;
        note: string | null;
        created_at: string;
        last_used_at: string | null;
      }[]
    ).map((row) => ({ id: row.id, user: row.user, note: row.note, createdAt: row.created_at, lastUsedAt: row.last_used_at }));
  }

  revokeToken(user: string, id: string): void {
    if (this.db.prepare('DELETE FROM tokens WHERE user = ? AND id = ?').run(user, id).changes === 0) {
      throw new UserError(`${user} has no token ${id}`);
    }
  }

  /** The user a name + token pair authenticates, or null. Compares hashes in constant time. */
  authenticateToken(name: string, secret: string): User | null {
    const token = this.matchingToken(secret);
    if (!token || token.user !== name) return null;
    return this.used(token);
  }

  /**
   * The user a token alone authenticates (an HTTP `Bearer` login), or null:
   * a token names its own id, and the id its user. Compares hashes in constant time.
   */
  authenticateBearer(secret: string): User | null {
    const token = this.matchingToken(secret);
    return token ? this.used(token) : null;
  }

  /** The token whose id `secret` names, when `secret` is that token's secret (hashes compared in constant time). */
  private matchingToken(secret: string): { id: string; user: string } | null {
    const id = /^upaas_([0-9a-f]{12})_/.exec(secret)?.[1];
    if (!id) return null;
    const row = this.db.prepare('SELECT user, hash FROM tokens WHERE id = ?').get(id) as { user: string; hash: string } | undefined;
    if (!row) return null;
    const given = Buffer.from(hashToken(secret), 'hex');
    return timingSafeEqual(given, Buffer.from(row.hash, 'hex')) ? { id, user: row.user } : null;
  }

  /** Notes that `token` was just used; its user. */
  private used(token: { id: string; user: string }): User | null {
    // At most once a minute per token: every API request logs in, and each write is a commit on the event loop.
    const now = new Date();
    const stale = new Date(now.getTime() - 60_000).toISOString();
    this.db.prepare('UPDATE tokens SET last_used_at = ? WHERE id = ? AND (last_used_at IS NULL OR last_used_at < ?)').run(now.toISOString(), token.id, stale);
    return this.get(token.user);
  }

  grant(repo: string, user: string, level: 'read' | 'write'): void {
    if (!this.get(user)) throw new UserError(`no user named ${user}`);
    this.db
      .prepare('INSERT INTO access (repo, user, level) VALUES (?, ?, ?) ON CONFLICT(repo, user) DO UPDATE SET level = excluded.level')
      .run(repo, user, level);
  }

  revoke(repo: string, user: string): void {
    this.db.prepare('DELETE FROM access WHERE repo = ? AND user = ?').run(repo, user);
  }

  grants(repo: string): { user: string; level: 'read' | 'write' }[] {
    return this.db.prepare('SELECT user, level FROM access WHERE repo = ? ORDER BY user').all(repo) as { user: string; level: 'read' | 'write' }[];
  }

  /** What `user` may do on `repo`. */
  accessTo(user: User, repo: string): AccessLevel {
    if (user.admin) return 'admin';
    const row = this.db.prepare('SELECT level FROM access WHERE repo = ? AND user = ?').get(repo, user.name) as
      | { level: 'read' | 'write' }
      | undefined;
    return row?.level ?? 'none';
  }
}

interface KeyRow {
  fingerprint: string;
  user: string;
  algorithm: string;
  public_key: string;
  comment: string | null;
  created_at: string;
}

const toKey = (row: KeyRow): KeyRecord => ({
  fingerprint: row.fingerprint,
  user: row.user,
  algorithm: row.algorithm,
  publicKey: row.public_key,
  comment: row.comment,
  createdAt: row.created_at,
});

const RANK: Record<AccessLevel, number> = { none: 0, read: 1, write: 2, admin: 3 };

/** Whether `has` is at least `needs`. */
export const allows = (has: AccessLevel, needs: AccessLevel): boolean => RANK[has] >= RANK[needs];
