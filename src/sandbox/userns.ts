/**
 * A user namespace for each build command, with every uid and gid mapped to
 * itself (files keep their owners: packages stay exact), and a seccomp filter
 * (seccomp.ts) on everything it runs. Root in a build then has capabilities
 * over what its own namespaces hold only, never over the host's network,
 * mounts or kernel; the limits the kernel keeps per user namespace (inotify,
 * fanotify) are the build's own share (kernelShares), where before a build
 * could take all of host root's. Kernel keyrings are per uid, and uid 0 in
 * the build is uid 0 on the host: the seccomp filter keeps builds away from them.
 *
 * util-linux's `unshare --map-users` needs newuidmap and /etc/subuid ranges;
 * this does what it would with Debian's essential perl: a helper process that
 * stays in the host's namespace writes the maps of its parent once the parent
 * has unshared, then the parent installs the filter and execs the rest.
 */
import { arch } from 'node:os';
import { readFileSync } from 'node:fs';
import { runChecked } from '../process/run.ts';
import { keyringFilter } from './seccomp.ts';
import { syscalls } from './syscalls.ts';

/**
 * Constant perl text; the syscall numbers, the seccomp filter (hex) and the
 * command reach it as arguments. The filter is installed once the namespace
 * is made (CAP_SYS_ADMIN in it, so no_new_privs is not needed and setuid
 * programs in the image still work) and holds for everything after.
 */
const SCRIPT = `
use strict;
my ($nr, $prctl, $filter) = splice(@ARGV, 0, 3); shift @ARGV if @ARGV && $ARGV[0] eq '--';
pipe(my $r, my $w) or die "upaas sandbox: pipe: $!\\n";
my $parent = $$;
my $pid = fork() // die "upaas sandbox: fork: $!\\n";
if ($pid == 0) {
  close $w; my $go = <$r>; exit 1 unless defined $go;
  for my $map ('uid_map', 'gid_map') {
    open(my $h, '>', "/proc/$parent/$map") or die "upaas sandbox: $map: $!\\n";
    print $h "0 0 4294967295\\n"; close $h or die "upaas sandbox: $map: $!\\n";
  }
  exit 0;
}
close $r;
syscall($nr, 0x10000000) == 0 or die "upaas sandbox: cannot make a user namespace: $!\\n";
print $w "go\\n"; close $w;
waitpid($pid, 0) == $pid && $? == 0 or die "upaas sandbox: the user namespace got no id maps\\n";
my $code = pack('H*', $filter);
my $fprog = pack('S x![P] P', length($code) / 8, $code);
# PR_SET_SECCOMP, SECCOMP_MODE_FILTER
syscall($prctl, 22, 2, $fprog, 0, 0) == 0 or die "upaas sandbox: cannot install the seccomp filter: $!\\n";
exec { $ARGV[0] } @ARGV or die "upaas sandbox: exec $ARGV[0]: $!\\n";
`;

/** The argv prefix that runs the rest of an argv in a new, identity-mapped user namespace. */
export function userNamespacePrefix(): string[] {
  const machine = arch();
  const { unshare, prctl } = syscalls();
  const filter = keyringFilter(machine);
  if (filter === null) throw new Error(`builds run in user namespaces with a seccomp filter, and upaas does not know the system calls of ${machine} (x64 and arm64 it does)`);
  return ['perl', '-e', SCRIPT, '--', String(unshare), String(prctl), filter.toString('hex'), '--'];
}

/** The per-user limits of the host (init namespace) that a build's namespace gets a share of, and the least share. */
const SHARED_LIMITS: { inside: string; host: string; least: number }[] = [
  { inside: 'max_inotify_instances', host: '/proc/sys/fs/inotify/max_user_instances', least: 8 },
  { inside: 'max_inotify_watches', host: '/proc/sys/fs/inotify/max_user_watches', least: 1024 },
  { inside: 'max_fanotify_groups', host: '/proc/sys/fs/fanotify/max_user_groups', least: 2 },
  { inside: 'max_fanotify_marks', host: '/proc/sys/fs/fanotify/max_user_marks', least: 1024 },
];

/**
 * What each build command's user namespace may hold of the limits host root
 * shares with it (what a build holds counts against root's too): host root's
 * limit divided by `parts` (twice builder.workers: the builds at once, and as
 * much again for the host), as "name=value" words for the sandbox's setup.
 */
export function kernelShares(parts: number): string[] {
  return SHARED_LIMITS.flatMap(({ inside, host, least }) => {
    let limit: number;
    try {
      limit = Number.parseInt(readFileSync(host, 'utf8'), 10);
    } catch {
      return [];
    }
    return Number.isFinite(limit) ? [`${inside}=${Math.max(least, Math.floor(limit / parts))}`] : [];
  });
}

let probed: Promise<void> | null = null;

/** Once per process: whether this host lets root make user namespaces (a clear error when it does not). */
export function probeUserNamespaces(): Promise<void> {
  probed ??= runChecked(
    'builds run in user namespaces, and this host refuses them (is /proc/sys/user/max_user_namespaces 0?)',
    userNamespacePrefix()[0] as string,
    [...userNamespacePrefix().slice(1), 'true'],
    { timeoutSeconds: 30 },
  );
  probed.catch(() => (probed = null));
  return probed;
}
