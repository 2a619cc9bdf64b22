/**
 * What a push asks for: which ref updates build (only the deploy branch, never
 * a delete), and which push options apply (`fresh`, `interpreter=VERSION`;
 * others are named in a warning and ignored). The notes are the pusher's first
 * lines, written by the server as soon as the hook reports the push; a push
 * that builds ends them with "Received BRANCH at REV" (and, when its build
 * runs before the branch moves, a line that says so).
 */
import { STEP } from '../builder/log.ts';
import { VERSION } from '../config/patterns.ts';

const ZERO = /^0+$/;

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

/** What the post-receive (or, when a failed build rejects the push, the pre-receive) hook reports of a push. */
export interface HookRequest {
  /** Which hook sent it. */
  hook: 'pre-receive' | 'post-receive';
  updates: RefUpdate[];
  options: string[];
  /** Push options the hook did not pass on because they hold a line break. */
  brokenOptions: number;
  /** pre-receive: the name of the folder that holds the pushed objects until the refs move (checked, not yet located). */
  quarantine?: string;
}

export interface PushPlan {
  notes: string[];
  build: { revision: string; fresh: boolean; interpreterVersion?: string } | null;
  /** The deploy branch's update that builds (null when nothing builds). */
  update: RefUpdate | null;
}

/** The push's notes and build; `beforeUpdate`: the build decides whether the branch moves (apps.reject_failed_builds). */
export function planPush(request: HookRequest, branch: string, beforeUpdate = false): PushPlan {
  const notes: string[] = [];
  let fresh = false;
  let interpreterVersion: string | undefined;
  for (const option of request.options) {
    if (option === 'fresh') fresh = true;
    else if (option.startsWith('interpreter=') && VERSION.test(option.slice('interpreter='.length))) {
      interpreterVersion = option.slice('interpreter='.length);
      fresh = true;
    } else notes.push(`${STEP}warning: unknown push option ${JSON.stringify(option)} ignored (known: fresh, interpreter=VERSION)`);
  }
  if (request.brokenOptions > 0) notes.push(`${STEP}warning: ${request.brokenOptions} push option(s) with a line break ignored`);
  let build: PushPlan['build'] = null;
  let building: RefUpdate | null = null;
  for (const update of request.updates) {
    if (update.ref !== `refs/heads/${branch}`) {
      notes.push(`${STEP}${update.ref} ${ZERO.test(update.new) ? 'deleted' : 'stored'}; only ${branch} builds`);
    } else if (ZERO.test(update.new)) {
      notes.push(`${STEP}${branch} deleted: nothing to build (the current package stays)`);
    } else if (/^[0-9a-f]{40}$/.test(update.new)) {
      build = { revision: update.new, fresh, ...(interpreterVersion ? { interpreterVersion } : {}) };
      building = update;
    }
  }
  if (build) notes.push(`${STEP}Received ${branch} at ${build.revision.slice(0, 12)}`);
  if (build && beforeUpdate) notes.push(`${STEP}${branch} moves only if this build succeeds (reject_failed_builds)`);
  return { notes, build, update: building };
}
