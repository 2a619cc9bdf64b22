/**
 * The system calls the perl helpers (the sandbox's, the tree cache's) make through perl's syscall(),
 * which needs their numbers, by architecture (node's os.arch()). Calls added
 * to Linux since 5.1 have one number on every architecture.
 */
import { arch } from 'node:os';

export interface Syscalls {
  unshare: number;
  prctl: number;
  mount: number;
  mountSetattr: number;
  mknodat: number;
}

const TABLE: Record<string, Syscalls> = {
  x64: { unshare: 272, prctl: 157, mount: 165, mountSetattr: 442, mknodat: 259 },
  arm64: { unshare: 97, prctl: 167, mount: 40, mountSetattr: 442, mknodat: 33 },
};

/** The numbers of this machine; a clear error on one upaas does not know. */
export function syscalls(): Syscalls {
  const found = TABLE[arch()];
  if (!found) throw new Error(`builds run in namespaces set up with raw system calls, and upaas does not know those of ${arch()} (x64 and arm64 it does)`);
  return found;
}
