/** What every transport gets from the server. */
import type { GitSlots } from '../core/git-slots.ts';
import type { Services } from '../core/services.ts';
import type { HookSessions, ReceivePackStarter } from '../git/service.ts';
import type { LoginThrottle } from '../core/login-throttle.ts';

export interface TransportOptions {
  services: Services;
  host: string;
  port: number;
  /** Opens each push's line to the post-receive shim (through the git service runner). */
  hooks: HookSessions;
  /** Starts receive-pack for SSH pushes from a process started ahead. */
  receivePacks: ReceivePackStarter;
  /** Failed logins per source address, shared by the transports. */
  throttle: LoginThrottle;
  /** Git processes per user, shared by the transports. */
  gitSlots: GitSlots;
  /** Counts the commands and API requests being served (the server waits for them at stop) and aborts them once its grace is over. */
  inFlight: CommandsInFlight;
  log: (line: string) => void;
}

/** What the transports need of the server's count of running commands (server/in-flight.ts). */
export interface CommandsInFlight {
  track<T>(work: () => Promise<T>): Promise<T>;
  /** Aborted when the server stops and builder.grace is over. */
  readonly signal: AbortSignal;
}
