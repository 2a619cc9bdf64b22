/** Input patterns shared by the admin config and app metadata validation. */

/** A Debian-style package name, optionally with :arch and =version. */
export const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+(:[a-z0-9-]+)?(=[A-Za-z0-9.+~:-]+)?$/;
export const PACKAGE_TEXT = 'a package name (like "libpq-dev" or "curl=7.88.1-10")';

export const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
export const ENV_TEXT = 'an environment variable name (letters, digits, _)';

/** An interpreter version as the metadata, --interpreter and -o interpreter= give it. */
export const VERSION = /^[0-9]+(\.[0-9]+)*$/;
export const VERSION_KEY = /^(any|[0-9]+(\.[0-9]+)*)$/;
export const VERSION_TEXT = '"any" or a version like "3.11"';

export const INTERPRETER_TYPE = /^[a-z][a-z0-9_-]*$/;
export const INTERPRETER_TYPE_TEXT = 'an interpreter type name (lowercase letters, digits, - and _)';

export const USER_OR_ID = /^([a-z_][a-z0-9_-]*|[0-9]+)$/;
export const BRANCH = /^(?!-)(?!.*\.\.)(?!.*\/\/)[A-Za-z0-9._/-]+(?<![./])$/;
export const ABSOLUTE_PATH = /^\/(?!.*(^|\/)\.\.?(\/|$))[^\0]*[^/\0]$/;
export const RELATIVE_FILE = /^(?!\/)(?!.*(^|\/)\.\.?(\/|$))[^\0]+$/;

/** An IPv4 or IPv6 network: an address with an optional /prefix (checked with net.isIP after the pattern). */
export const NETWORK = /^([0-9.]+|[0-9A-Fa-f:]+)(\/[0-9]{1,3})?$/;
export const NETWORK_TEXT = 'an address or network like "10.0.0.0/8" or "fd00::/8"';

/** The characters of an app (repository) name; isAppName has the whole rule. */
export const REPO_NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** An app name as the server keeps it: REPO_NAME, no "..", not ending in ".git" (the suffix users may add), at most 100 characters. */
export function isAppName(name: string): boolean {
  return REPO_NAME.test(name) && !name.includes('..') && !name.endsWith('.git') && name.length <= 100;
}
