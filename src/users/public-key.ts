/** Parsing an OpenSSH public key line ("ssh-ed25519 AAAA... comment") into what state keeps. */
import { ssh2 } from '../ssh2.ts';
import { UserError, fingerprintOf } from '../state/users.ts';

export interface ParsedPublicKey {
  fingerprint: string;
  algorithm: string;
  publicKey: string;
  comment: string | null;
}

/** The most a public key input may be: an RSA 16384-bit key line is under 3 KiB; a comment and slack fit. */
export const KEY_INPUT_BYTES = 16 * 1024;

export function parsePublicKey(text: string): ParsedPublicKey {
  const lines = text.split('\n').map((line) => line.trim()).filter((line) => line && !line.startsWith('#'));
  if (lines.length !== 1) throw new UserError(`expected one OpenSSH public key line, got ${lines.length}`);
  const line = lines[0] as string;
  if (line.includes('PRIVATE KEY')) throw new UserError('that is a private key: give the public one (the .pub file)');
  const parsed = ssh2().utils.parseKey(line);
  if (parsed instanceof Error || Array.isArray(parsed)) {
    throw new UserError(`not an OpenSSH public key (${parsed instanceof Error ? parsed.message : 'several keys'}): expected a line like "ssh-ed25519 AAAA... you@host"`);
  }
  const blob = parsed.getPublicSSH();
  const [algorithm = parsed.type, data = ''] = line.split(/\s+/);
  const comment = line.split(/\s+/).slice(2).join(' ') || null;
  return { fingerprint: fingerprintOf(blob), algorithm, publicKey: `${algorithm} ${data}`, comment };
}
