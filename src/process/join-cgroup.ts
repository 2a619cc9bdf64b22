/**
 * How every program of a build starts on the host: a bash prelude (dash
 * cannot close descriptors above 9) joins the build's cgroup (each
 * cgroup.procs file named before `--`) before anything is started, closes
 * every descriptor but stdin, stdout and stderr (whatever this server or a
 * library left open without close-on-exec must not reach a build), then execs
 * the rest. Constant text: the paths and the program reach it as arguments.
 */
const PRELUDE = `
while [ "$1" != -- ]; do
  echo 0 > "$1" || { echo "upaas: cannot join the build's cgroup" >&2; exit 125; }
  shift
done
shift
for fd in /proc/self/fd/*; do
  fd=\${fd##*/}
  if [ "$fd" -gt 2 ] && [ -e "/proc/self/fd/$fd" ]; then eval "exec $fd>&-"; fi
done
exec "$@"
`;

/** The argv prefix that runs the rest of an argv through the prelude, in the cgroups of `procs`. */
export const preludePrefix = (procs: readonly string[]): string[] => ['bash', '-c', PRELUDE, 'upaas-prelude', ...procs, '--'];

/** `file args` started through the prelude in the cgroups of `procs` (as it is when there are none). */
export function joinedCommand(procs: readonly string[], file: string, args: readonly string[]): [string, string[]] {
  if (procs.length === 0) return [file, [...args]];
  const [shell, ...rest] = preludePrefix(procs);
  return [shell as string, [...rest, file, ...args]];
}
