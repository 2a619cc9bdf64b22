/**
 * An app's config vars: variables its own actions (before, main, after) see
 * at build time, set by its writers and kept in the state, never in a package
 * or a repo. A change takes effect at the next build.
 */
import { ENV_NAME } from '../config/patterns.ts';
import { MAX_ENV_BYTES, envBytesOf } from '../metadata/metadata.ts';
import { CoreError } from './errors.ts';
import type { Services } from './services.ts';

/** Names the builder sets itself for every action: a config var of that name would never be seen. */
const FORCED = /^(HOME|UPAAS_.*)$/;

/** A CoreError that names `name` when it is no env name. */
function checkEnvName(name: string): string {
  if (!ENV_NAME.test(name)) throw new CoreError(`invalid config var name ${JSON.stringify(name)}: expected letters, digits and _, not starting with a digit`, 400);
  return name;
}

/** A name that may be set: an env name the builder does not set itself. */
function checkName(name: string): string {
  if (FORCED.test(checkEnvName(name))) throw new CoreError(`config var ${name}: HOME and UPAAS_* are set by the builder for every action`, 400);
  return name;
}

/** "KEY=VALUE" words to a mapping; the value may hold "=" and be empty. */
export function parseAssignments(words: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const word of words) {
    const at = word.indexOf('=');
    if (at <= 0) throw new CoreError(`expected KEY=VALUE, got ${JSON.stringify(word)}`, 400);
    const name = checkName(word.slice(0, at));
    if (name in out) throw new CoreError(`config var ${name} given more than once`, 400);
    out[name] = word.slice(at + 1);
  }
  return out;
}

export function listConfigVars(services: Pick<Services, 'state'>, app: string): Record<string, string> {
  return services.state.configVars.get(app);
}

/** Sets variables of `app`; refused (nothing changed) when all of them would take more than the env limit. */
export function setConfigVars(services: Pick<Services, 'state'>, app: string, vars: Record<string, string>, by: string): Record<string, string> {
  for (const name of Object.keys(vars)) checkName(name);
  for (const [name, value] of Object.entries(vars)) {
    if (value.includes('\0')) throw new CoreError(`config var ${name}: a value cannot hold a NUL character`, 400);
  }
  return services.state.configVars.change(app, { set: vars, by }, (result) => {
    const bytes = envBytesOf(result);
    if (bytes > MAX_ENV_BYTES) {
      throw new CoreError(`the config vars of ${app} would take ${bytes} bytes, more than the ${MAX_ENV_BYTES / 1024} KiB an environment may hold here`, 400);
    }
  });
}

/** Unsets variables of `app`; names it does not have are refused, so that a typo does not pass for done. */
export function unsetConfigVars(services: Pick<Services, 'state'>, app: string, names: string[], by: string): Record<string, string> {
  for (const name of names) checkEnvName(name);
  return services.state.configVars.change(app, { unset: names, by }, () => {
    const have = services.state.configVars.get(app);
    const missing = names.filter((name) => !(name in have));
    if (missing.length > 0) throw new CoreError(`${app} has no config var ${missing.join(', ')}`, 404);
  });
}
