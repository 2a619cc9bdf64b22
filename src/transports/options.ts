/** What every transport gets from the server. */
import type { Services } from '../cli/command.ts';

export interface TransportOptions {
  services: Services;
  host: string;
  port: number;
  /** The hook socket and entry point handed to git through the git service runner. */
  hookSocket: string;
  bin: string;
  log: (line: string) => void;
}
