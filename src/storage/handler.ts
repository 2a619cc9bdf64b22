/**
 * The storage handler contract: where images and packages live. Keys are
 * slash-separated relative names ("packages/myapp/<sha256>.tar.zst").
 * Writes are atomic (a reader never sees a partial object) and hash what they
 * write in the same pass; reads verify that hash.
 */
import type { Readable } from 'node:stream';

export interface StoredObject {
  key: string;
  bytes: number;
  sha256: string;
  /** When the object was written. */
  modifiedAt: Date;
}

/** What the store holds under a key, as an inventory sees it: a whole object, or what is left of one. */
export interface StoredEntry {
  key: string;
  bytes: number;
  /** False when a part is missing (a local file without its hash, or a hash without its file). */
  complete: boolean;
  /** When it was last written. */
  modifiedAt: Date;
}

/** A key, or a function that names the object from its SHA-256 once it is known. */
export type KeyFor = string | ((sha256: string) => string);

export interface StorageHandler {
  readonly name: string;
  /** Folders on this host where it keeps objects: server paths, never shown to a client. */
  readonly hostFolders: readonly string[];
  /** Streams `body` into storage; the object appears under its key only when complete. */
  put(key: KeyFor, body: Readable): Promise<StoredObject>;
  /**
   * Streams an object; the stream errors before its last bytes if the content does not match its recorded hash
   * (verify.ts). With `sha256`, the object must be that one: another written under the key since is an error.
   */
  get(key: string, sha256?: string): Promise<Readable>;
  exists(key: string): Promise<boolean>;
  stat(key: string): Promise<StoredObject | null>;
  delete(key: string): Promise<void>;
  list(prefix: string): Promise<StoredObject[]>;
  /** Every key the store holds anything under (outside what writers are still writing), whole or not: the doctor checks them against the records. */
  inventory(): Promise<StoredEntry[]>;
  /** Removes what writers that are gone left half-written (called at server start); returns what it removed. */
  sweep(): Promise<string[]>;
}

export class StorageError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

/** Keeps keys relative and inside the store: no absolute paths, no `..`, no empty parts. */
export function checkKey(key: string): string {
  if (!/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(key) || key.split('/').some((part) => part === '..' || part === '.')) {
    throw new StorageError(`invalid storage key: ${JSON.stringify(key)}`);
  }
  return key;
}
