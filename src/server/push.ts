/**
 * What a push asks for: which ref updates build (only the deploy branch, never
 * a delete), and which push options apply (`fresh`, `interpreter=VERSION`;
 * others are named in a warning and ignored). The notes are the pusher's first
 * lines, written by the server as soon as the hook reports the push; a push
 * that builds ends them with "Received BRANCH at REV".
 */
import { STEP } from '../builder/log.ts';
import { VERSION } from '../config/patterns.ts';

const ZERO = /^0+$/;

export interface RefUpdate {
  old: string;
  new: string;
  ref: string;
}

/** What the post-receive hook reports of a push. */
export interface HookRequest {
  updates: RefUpdate[];
  options: string[];
  /** Push options the hook did not pass on because they hold a line break. */
  brokenOptions: number;
}

export interface PushPlan {
  notes: string[];
  build: { revision: string; fresh: boolean; interpreterVersion?: string } | null;
}

export function planPush(request: HookRequest, branch: string): PushPlan {
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
  for (const update of request.updates) {
    if (update.ref !== `refs/heads/${branch}`) {
      notes.push(`${STEP}${update.ref} ${ZERO.test(update.new) ? 'deleted' : 'stored'}; only ${branch} builds`);
    } else if (ZERO.test(update.new)) {
      notes.push(`${STEP}${branch} deleted: nothing to build (the current package stays)`);
    } else if (/^[0-9a-f]{40}$/.test(update.new)) {
      build = { revision: update.new, fresh, ...(interpreterVersion ? { interpreterVersion } : {}) };
    }
  }
  if (build) notes.push(`${STEP}Received ${branch} at ${build.revision.slice(0, 12)}`);
  return { notes, build };
}
