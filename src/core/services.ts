/** What every operation of the core works with: the config and the ports (state, storage, the build queue, the event sink). */
import type { BuildServices } from '../builder/builder.ts';
import type { EventSink } from '../events/events.ts';
import type { GitSlots } from './git-slots.ts';
import type { BuildQueue } from './queue.ts';

export interface Services extends BuildServices {
  /** The server's build queue; absent when a command runs locally, outside the server. */
  queue?: BuildQueue;
  /** Where builds and releases report what happened (the webhooks); absent: nobody listens. */
  events?: EventSink;
  /** Git operations and downloads per user (server.git_per_user); absent outside the server. */
  gitSlots?: GitSlots;
}
