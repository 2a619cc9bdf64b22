/**
 * A user namespace for each build command, with every uid and gid mapped to
 * itself: files keep their owners (packages stay exact), but what the kernel
 * keeps per user namespace is the build's own, not the host root's: root's
 * kernel keyrings (a build could read a key that root put in its user
 * keyring) and the inotify quota (a build could take all of root's
 * instances; inside it gets a share, INOTIFY_INSTANCES). It also takes from
 * root in the build every capability over what the host's namespaces own:
 * the host's network, its mounts, its kernel.
 *
 * util-linux's `unshare --map-users` needs newuidmap and /etc/subuid ranges;
 * this does what it would with Debian's essential perl: a helper process that
 * stays in the host's namespace writes the maps of its parent once the parent
 * has unshared, then the parent execs the rest.
 */
import { arch } from 'node:os';
import { readFileSync } from 'node:fs';
import { runChecked } from '../process/run.ts';

/** unshare(2) by architecture (perl's syscall() needs the number). */
const UNSHARE_SYSCALL: Record<string, number> = { x64: 272, arm64: 97, arm: 337, ia32: 310, riscv64: 97, ppc64: 282, s390x: 303, loong64: 97 };

/** Constant perl text; the syscall number and the command reach it as arguments. */
const SCRIPT = `
use strict;
my $nr = shift @ARGV; shift @ARGV if @ARGV && $ARGV[0] eq '--';
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
exec { $ARGV[0] } @ARGV or die "upaas sandbox: exec $ARGV[0]: $!\\n";
`;

/** The argv prefix that runs the rest of an argv in a new, identity-mapped user namespace. */
export function userNamespacePrefix(): string[] {
  const nr = UNSHARE_SYSCALL[arch()];
  if (nr === undefined) throw new Error(`builds need user namespaces, and upaas does not know unshare(2) on ${arch()}`);
  return ['perl', '-e', SCRIPT, String(nr), '--'];
}

/** The inotify instances a build may hold at once: a share of the host root's quota, never all of it. */
export function inotifyShare(): number {
  const host = Number.parseInt(readFileSync('/proc/sys/fs/inotify/max_user_instances', 'utf8'), 10);
  return Math.max(8, Math.floor((Number.isFinite(host) ? host : 128) / 4));
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
