/**
 * The ssh2 package, loaded on first use: loading it takes tens of
 * milliseconds that a command line start (which needs it only to read a
 * public key, if at all) should not pay. A leaf any module may import.
 */
import { createRequire } from 'node:module';
import type * as Ssh2 from 'ssh2';

let loaded: typeof Ssh2 | null = null;

export function ssh2(): typeof Ssh2 {
  loaded ??= createRequire(import.meta.url)('ssh2') as typeof Ssh2;
  return loaded;
}
