/** What every transport gets from the server. */
import type { Services } from '../commands/command.ts';
import type { HookSessions, ReceivePackStarter } from '../git/service.ts';

export interface TransportOptions {
  services: Services;
  host: string;
  port: number;
  /** Opens each push's line to the post-receive shim (through the git service runner). */
  hooks: HookSessions;
  /** Starts receive-pack for SSH pushes from a process started ahead. */
  receivePacks: ReceivePackStarter;
  log: (line: string) => void;
}
