/**
 * What a push asks for: which ref updates build (only the deploy branch, never
 * a delete), and which push options apply (`fresh`, `interpreter=VERSION`;
 * others are named in a warning and ignored).
 */
import { STEP } from '../build/log.ts';

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
    else if (/^interpreter=[0-9]+(\.[0-9]+)*$/.test(option)) {
      interpreterVersion = option.slice('interpreter='.length);
      fresh = true;
    } else notes.push(`${STEP}warning: unknown push option ${JSON.stringify(option)} ignored (known: fresh, interpreter=VERSION)`);
  }
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
  return { notes, build };
}
