/** What every operation of the core works with: the config and the ports (state, storage, the build queue). */
import type { Config } from '../config/config.ts';
import type { State } from '../state/state.ts';
import type { StorageHandler } from '../storage/handler.ts';
import type { BuildQueue } from './queue.ts';

export interface Services {
  config: Config;
  state: State;
  storage: StorageHandler;
  /** The server's build queue; absent when a command runs locally, outside the server. */
  queue?: BuildQueue;
}
