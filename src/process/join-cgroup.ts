/** Starting a host program inside a build's cgroup (sandbox/cgroups.ts), from its first instruction. */

/**
 * `file args` joined to the cgroups whose cgroup.procs files are `procs`
 * before it starts (a constant sh script; the paths reach it as arguments).
 */
export function joinedCommand(procs: readonly string[], file: string, args: readonly string[]): [string, string[]] {
  if (procs.length === 0) return [file, [...args]];
  const script = 'while [ "$1" != -- ]; do echo 0 > "$1" || exit 125; shift; done; shift; exec "$@"';
  return ['/bin/sh', ['-c', script, 'upaas-cgroup', ...procs, '--', file, ...args]];
}
