/**
 * The `local` storage handler: objects are files under one folder, each with a
 * `.sha256` sidecar. A write goes to a temp file that is hashed as it is
 * written, fsynced and renamed into place; a read re-hashes and fails on a
 * mismatch before its last bytes (verify.ts).
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { type FileHandle, chmod, mkdir, open, readFile, readdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { PassThrough, Transform, type Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sha256Check } from './verify.ts';
import { type KeyFor, type StorageHandler, StorageError, type StoredEntry, type StoredObject, checkKey } from './handler.ts';

const SIDECAR = '.sha256';
/** A write syncs what it wrote each time this much more was written (see put). */
const SYNC_EVERY = 16 * 1024 * 1024;
/** Reads in chunks this big: fewer, larger writes to a downloading client. */
const READ_CHUNK = 1024 * 1024;

export class LocalStorage implements StorageHandler {
  readonly name = 'local';

  constructor(readonly dir: string) {}

  get hostFolders(): readonly string[] {
    return [this.dir];
  }

  private path(key: string): string {
    return join(this.dir, checkKey(key));
  }

  async put(key: KeyFor, body: Readable): Promise<StoredObject> {
    await mkdir(join(this.dir, '.tmp'), { recursive: true });
    // Packages are whole app images, `files` (configs, secrets) included: root's alone.
    await chmod(this.dir, 0o700);
    const temp = join(this.dir, '.tmp', `${process.pid}-${Date.now()}-${Math.random().toString(36).slice(2)}`);
    const hash = createHash('sha256');
    let bytes = 0;
    let handle: FileHandle | null = null;
    try {
      // Made here and written through a stream of its own; this handle syncs it (a sync is the file's, whatever descriptor asks).
      const file = await open(temp, 'wx');
      handle = file;
      // What is written goes to the disk while the write goes on (a datasync each time SYNC_EVERY more bytes
      // came, one after another, beside the writes), so that the sync before the rename waits for the last part only.
      let syncing: Promise<void> = Promise.resolve();
      let unsynced = 0;
      const meter = new Transform({
        transform(chunk: Buffer, _encoding, done) {
          hash.update(chunk);
          bytes += chunk.length;
          unsynced += chunk.length;
          if (unsynced >= SYNC_EVERY) {
            unsynced = 0;
            syncing = syncing.then(() => file.datasync());
            // Handled here, thrown below: a failed sync fails the put once the write is over.
            syncing.catch(() => undefined);
          }
          done(null, chunk);
        },
      });
      await pipeline(body, meter, createWriteStream(temp, { flags: 'r+' }));
      await syncing;
      await file.sync();
      const sha256 = hash.digest('hex');
      const finalKey = checkKey(typeof key === 'string' ? key : key(sha256));
      const target = this.path(finalKey);
      await mkdir(dirname(target), { recursive: true });
      // Both files appear by rename, so neither is ever seen half-written. A
      // reader between the two renames of a replaced object sees a checksum
      // mismatch, which it treats like corruption.
      await writeFile(`${temp}${SIDECAR}`, `${sha256}\n`);
      await rename(temp, target);
      await rename(`${temp}${SIDECAR}`, `${target}${SIDECAR}`);
      return { key: finalKey, bytes, sha256, modifiedAt: new Date() };
    } catch (error) {
      throw new StorageError(`local storage: writing failed: ${(error as Error).message}`, { cause: error });
    } finally {
      await handle?.close().catch(() => undefined);
      await rm(temp, { force: true });
      await rm(`${temp}${SIDECAR}`, { force: true });
    }
  }

  /**
   * Temp files of writers that died mid-put (a crash, a SIGKILL): each name
   * starts with its writer's PID, and one whose process is gone is removed.
   * A live writer's file (a local `upaas build` beside the server) stays.
   * Called before this process writes anything.
   */
  async sweep(): Promise<string[]> {
    const tmp = join(this.dir, '.tmp');
    const removed: string[] = [];
    for (const entry of await readdir(tmp).catch(() => [] as string[])) {
      const pid = /^([0-9]+)-/.exec(entry)?.[1];
      // This process has written nothing yet: a file with its PID is a dead predecessor's
      // (a restarted container often gets the same PID).
      const live = pid !== undefined && pid !== String(process.pid) && (await stat(`/proc/${pid}`).then(() => true, () => false));
      if (live) continue;
      await rm(join(tmp, entry), { force: true, recursive: true });
      removed.push(join(tmp, entry));
    }
    return removed;
  }

  async get(key: string, sha256?: string): Promise<Readable> {
    const path = this.path(key);
    const recorded = await this.recordedHash(key);
    if (recorded === null) throw new StorageError(`local storage: no object ${key}`);
    if (sha256 !== undefined && recorded !== sha256) throw new StorageError(`local storage: ${key} is not the object asked for (sha256 ${recorded}, asked for ${sha256})`);
    const expected = sha256 ?? recorded;
    const verify = sha256Check(expected, (actual) => new StorageError(`local storage: ${key} is corrupt (sha256 ${actual}, expected ${expected})`));
    const out = new PassThrough();
    pipeline(createReadStream(path, { highWaterMark: READ_CHUNK }), verify, out).catch((error: unknown) => out.destroy(error as Error));
    return out;
  }

  private async recordedHash(key: string): Promise<string | null> {
    const sidecar = `${this.path(key)}${SIDECAR}`;
    try {
      return (await readFile(sidecar, 'utf8')).trim();
    } catch {
      return null;
    }
  }

  async exists(key: string): Promise<boolean> {
    return (await this.stat(key)) !== null;
  }

  async stat(key: string): Promise<StoredObject | null> {
    const path = this.path(key);
    const sha256 = await this.recordedHash(key);
    if (sha256 === null) return null;
    try {
      const info = await stat(path);
      return { key, bytes: info.size, sha256, modifiedAt: info.mtime };
    } catch {
      return null;
    }
  }

  async delete(key: string): Promise<void> {
    const path = this.path(key);
    await rm(path, { force: true });
    await rm(`${path}${SIDECAR}`, { force: true });
  }

  async list(prefix: string): Promise<StoredObject[]> {
    const base = join(this.dir, checkKey(prefix));
    let entries: string[];
    try {
      entries = (await readdir(base, { recursive: true })) as string[];
    } catch {
      return [];
    }
    const out: StoredObject[] = [];
    for (const entry of entries) {
      if (entry.endsWith(SIDECAR)) continue;
      const key = relative(this.dir, join(base, entry));
      const info = await this.stat(key).catch(() => null);
      if (info) out.push(info);
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }

  async inventory(): Promise<StoredEntry[]> {
    const entries = (await readdir(this.dir, { recursive: true, withFileTypes: true }).catch(() => [])).filter((entry) => entry.isFile());
    const files = new Map<string, { bytes: number; modifiedAt: Date }>();
    for (const entry of entries) {
      const key = relative(this.dir, join(entry.parentPath, entry.name));
      if (key === '.tmp' || key.startsWith('.tmp/')) continue;
      const info = await stat(join(this.dir, key)).catch(() => null);
      files.set(key, { bytes: info?.size ?? 0, modifiedAt: info?.mtime ?? new Date() });
    }
    const out: StoredEntry[] = [];
    for (const [key, { bytes, modifiedAt }] of files) {
      if (key.endsWith(SIDECAR)) {
        const object = key.slice(0, -SIDECAR.length);
        if (!files.has(object)) out.push({ key: object, bytes: 0, complete: false, modifiedAt });
        continue;
      }
      out.push({ key, bytes, complete: files.has(`${key}${SIDECAR}`), modifiedAt });
    }
    return out.sort((a, b) => a.key.localeCompare(b.key));
  }
}
