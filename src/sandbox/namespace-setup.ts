/**
 * What every sandboxed command's namespaces get before its command runs, in
 * one perl process (Debian's essential perl-base) instead of a shell script
 * that started `mount`, `mkdir` and `ln` two dozen times per command: the
 * host name, the build's share of the per-user kernel limits, the loopback
 * interface when the namespace has a network of its own, /proc (with
 * /proc/sys and the other kernel knobs read-only, the key lists hidden), a
 * minimal /dev, a fresh /run, the build's resolv.conf and the read-only
 * binds; then chroot into the image, the capabilities outside
 * KEPT_CAPABILITIES dropped from the bounding set (irreversibly, for
 * everything started after), and `sh` in the chroot, which enters the
 * working directory, takes the command's environment and execs the command.
 *
 * The script is constant text: paths, values and the command reach it only
 * as arguments, never pasted into it. It refuses an image whose /proc, /dev,
 * /run, /etc or /etc/resolv.conf is a symlink (a mount would follow it onto
 * the host). Every failure says what failed and exits with status 125.
 * Read-only binds are made with mount_setattr(2) (Linux 5.12), which sets
 * the one attribute and keeps the ones the host's mount has locked.
 */
import { syscalls } from './syscalls.ts';

/**
 * In the chroot, with the capabilities gone: the working directory, the
 * command's environment, then the command. The environment's names come as
 * arguments up to a "--" (checked names only), their values in this
 * process's own environment as UPAAS_SANDBOX_ENV_NAME: values are no
 * argument that any user of the host could read in /proc/PID/cmdline, and no
 * name can steer a host program (LD_PRELOAD arrives as
 * UPAAS_SANDBOX_ENV_LD_PRELOAD).
 */
const ENTER = 'cd -- "$1" && shift && unset OLDPWD && while [ "$1" != -- ]; do eval "$1=\\"\\$UPAAS_SANDBOX_ENV_$1\\"; export $1; unset UPAAS_SANDBOX_ENV_$1"; shift; done; shift; exec "$@"';

const SCRIPT = `
use strict;
my ($root, $wd, $drop, $resolv, $lo, $shares, $nr_mount, $nr_setattr, $nr_prctl) = splice(@ARGV, 0, 9);
sub fail { print STDERR "upaas sandbox: $_[0]\\n"; exit 125; }
sub put {
  my ($path, $text) = @_;
  open(my $h, '>', $path) or fail("$path: $!");
  print $h $text;
  close $h or fail("$path: $!");
}
# mount(2) and mount_setattr(2) flags (linux/mount.h).
my ($MS_NOSUID, $MS_NODEV, $MS_NOEXEC, $MS_BIND) = (2, 4, 8, 4096);
my ($RDONLY, $NOSUID, $NODEV, $NOEXEC) = (1, 2, 4, 8);
sub mnt {
  my ($source, $target, $type, $flags, $data) = @_;
  syscall($nr_mount, $source, $target, $type, $flags, $data) == 0 or fail("cannot mount $target: $!");
}
sub bindmount { mnt($_[0], $_[1], 0, $MS_BIND, 0); }
# AT_FDCWD, AT_SYMLINK_NOFOLLOW, struct mount_attr (attr_set, attr_clr, propagation, userns_fd).
sub attrs {
  my ($target, $set) = @_;
  syscall($nr_setattr, -100, $target, 0x100, pack('Q4', $set, 0, 0, 0), 32) == 0 or fail("cannot make $target read-only: $!");
}

put('/proc/sys/kernel/hostname', "localhost\\n");
for my $share (split ' ', $shares) {
  my ($name, $value) = split /=/, $share, 2;
  put("/proc/sys/user/$name", "$value\\n") if -e "/proc/sys/user/$name";
}
if ($lo eq 'lo') {
  # SIOCGIFFLAGS, then SIOCSIFFLAGS with IFF_UP, on a struct ifreq (name, then the flags).
  socket(my $s, 2, 2, 0) or fail("socket: $!");
  my $req = pack('a16 x24', 'lo');
  ioctl($s, 0x8913, $req) or fail("cannot read the flags of lo: $!");
  $req = pack('a16 s x22', 'lo', unpack('x16 s', $req) | 1);
  ioctl($s, 0x8914, $req) or fail("cannot bring lo up: $!");
  close $s;
}
for my $p ('proc', 'dev', 'run', 'etc', 'etc/resolv.conf') {
  fail("/$p in the image is a symlink; refusing to mount over it") if -l "$root/$p";
}
for my $p ('proc', 'dev') { fail("the image has no /$p directory") unless -d "$root/$p"; }
fail('the image has no /bin/sh') unless -e "$root/bin/sh" || -l "$root/bin/sh";

mnt('proc', "$root/proc", 'proc', $MS_NOSUID | $MS_NODEV | $MS_NOEXEC, 0);
# The kernel's key list names what host root keeps in its keyrings (the keys themselves are refused by seccomp).
for my $p ('keys', 'key-users') { bindmount('/dev/null', "$root/proc/$p") if -e "$root/proc/$p"; }
for my $p ('sys', 'sysrq-trigger', 'irq', 'bus', 'fs') {
  next unless -e "$root/proc/$p";
  bindmount("$root/proc/$p", "$root/proc/$p");
  attrs("$root/proc/$p", $RDONLY | $NOSUID | $NODEV | $NOEXEC);
}
mnt('upaas-dev', "$root/dev", 'tmpfs', $MS_NOSUID, 'mode=0755,size=16m');
for my $d ('null', 'zero', 'full', 'random', 'urandom', 'tty') {
  put("$root/dev/$d", '');
  bindmount("/dev/$d", "$root/dev/$d");
}
mkdir("$root/dev/shm") && chmod(01777, "$root/dev/shm") or fail("$root/dev/shm: $!");
mnt('upaas-shm', "$root/dev/shm", 'tmpfs', $MS_NOSUID | $MS_NODEV, 0);
mkdir("$root/dev/pts") or fail("$root/dev/pts: $!");
symlink('/proc/self/fd', "$root/dev/fd") or fail("$root/dev/fd: $!");
for my $n (0, 1, 2) {
  my $name = ('stdin', 'stdout', 'stderr')[$n];
  symlink("/proc/self/fd/$n", "$root/dev/$name") or fail("$root/dev/$name: $!");
}
if (-d "$root/run") {
  mnt('upaas-run', "$root/run", 'tmpfs', $MS_NOSUID | $MS_NODEV, 'mode=0755');
  mkdir("$root/run/lock") && chmod(01777, "$root/run/lock") or fail("$root/run/lock: $!");
}
if ($resolv ne '' && -f $resolv && -d "$root/etc") {
  put("$root/etc/resolv.conf", '') unless -e "$root/etc/resolv.conf";
  bindmount($resolv, "$root/etc/resolv.conf");
  attrs("$root/etc/resolv.conf", $RDONLY);
}
while (@ARGV && $ARGV[0] eq '--bind-ro') {
  my (undef, $source, $target) = splice(@ARGV, 0, 3);
  my $path = $root;
  for my $part (grep { length } split m{/}, $target) {
    $path .= "/$part";
    -d $path or mkdir($path) or fail("$path: $!");
  }
  bindmount($source, $path);
  attrs($path, $RDONLY);
}
shift @ARGV if @ARGV && $ARGV[0] eq '--';

chroot($root) or fail("cannot chroot: $!");
chdir('/') or fail("cannot enter the chroot: $!");
# PR_CAPBSET_DROP
for my $cap (split /,/, $drop) { syscall($nr_prctl, 24, $cap + 0, 0, 0, 0) == 0 or fail("cannot drop capability $cap: $!"); }
my %env = (PATH => $ENV{PATH});
for my $name (keys %ENV) { $env{$name} = $ENV{$name} if $name =~ /^UPAAS_SANDBOX_ENV_/; }
%ENV = %env;
exec { '/bin/sh' } '/bin/sh', '-c', shift(@ARGV), 'upaas-sandbox', $wd, @ARGV or fail("cannot start /bin/sh in the image: $!");
`;

export interface SetupOptions {
  root: string;
  /** Working directory inside the chroot. */
  cwd: string;
  /** Capability numbers to drop from the bounding set, comma-separated. */
  drop: string;
  /** The resolv.conf to bind (empty: none). */
  resolv: string;
  /** Bring up a loopback interface (the namespace has a network of its own). */
  loopback: boolean;
  /** "name=value" words of per-user kernel limits (userns.ts kernelShares). */
  shares: string[];
  /** Host folders made visible read-only at paths inside the chroot. */
  binds: { source: string; target: string }[];
  /** The names of the command's environment (their values come as UPAAS_SANDBOX_ENV_NAME). */
  envNames: string[];
}

/** The argv that sets up the namespaces it runs in for `argv`, then runs `argv` in the chroot. */
export function setupCommand(options: SetupOptions, argv: readonly string[]): string[] {
  const numbers = syscalls();
  return [
    'perl',
    '-e',
    SCRIPT,
    // No argument after it is a switch of perl's, whatever it starts with.
    '--',
    options.root,
    options.cwd,
    options.drop,
    options.resolv,
    options.loopback ? 'lo' : '',
    options.shares.join(' '),
    String(numbers.mount),
    String(numbers.mountSetattr),
    String(numbers.prctl),
    ...options.binds.flatMap((bind) => ['--bind-ro', bind.source, bind.target]),
    '--',
    ENTER,
    ...options.envNames,
    '--',
    ...argv,
  ];
}
