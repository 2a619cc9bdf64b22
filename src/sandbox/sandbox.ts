/**
 * Runs one command chrooted into a build's system image, inside its own
 * user (identity-mapped, userns.ts), mount, PID, IPC and UTS namespaces, in its build's network namespace and
 * cgroup (jail.ts; a command outside a build gets a loopback-only network of
 * its own). The namespace gets /proc (with /proc/sys and the other kernel
 * knobs read-only), a minimal /dev, a fresh /run, the build's resolv.conf and
 * optional read-only binds; only stdin, stdout and stderr stay open. When the
 * command ends, times out or is killed, the PID namespace takes every process
 * it started down with it and the mount namespace takes every mount: nothing
 * outlives it. It cannot see the host's SysV IPC or abstract unix sockets,
 * nor set the host's name.
 *
 * The command runs as root inside the image (package managers need that) but
 * not as the host's full root: the setup (namespace-setup.ts) chroots and then
 * drops every capability from the bounding set except the few a package
 * install uses (KEPT_CAPABILITIES).
 * Without CAP_SYS_ADMIN it cannot remount the read-only binds, unmount /proc/sys
 * or make new mounts; without CAP_SYS_CHROOT it cannot break out of the chroot;
 * without CAP_MKNOD it cannot make a device node for a host disk; without
 * CAP_DAC_READ_SEARCH it cannot open host files by handle. The drop is
 * irreversible and inherited by everything the command starts.
 *
 * The setup is constant text: paths and the command reach it only as
 * arguments, never pasted into it.
 */
import { readFileSync } from 'node:fs';
import { preludePrefix } from '../process/join-cgroup.ts';
import { type RunOptions, type RunResult, SYSTEM_PATH, run } from '../process/run.ts';
import { type Confinement, UNCONFINED } from './jail.ts';
import { setupCommand } from './namespace-setup.ts';
import { kernelShares, userNamespacePrefix } from './userns.ts';

/** How the command's environment passes the host side (namespace-setup.ts). */
const ENV_PREFIX = 'UPAAS_SANDBOX_ENV_';

/** Where binds live inside the chroot: under /run, a tmpfs, so nothing is left in the image. */
export const BIND_ROOT = '/run/upaas';

/**
 * What root inside the sandbox keeps (Docker's default set minus MKNOD, NET_RAW
 * and SYS_CHROOT): enough for dpkg and apt (owners, modes, file capabilities,
 * dropping to the _apt user), nothing that reaches past the image.
 */
export const KEPT_CAPABILITIES: Readonly<Record<string, number>> = {
  cap_chown: 0,
  cap_dac_override: 1,
  cap_fowner: 3,
  cap_fsetid: 4,
  cap_kill: 5,
  cap_setgid: 6,
  cap_setuid: 7,
  cap_setpcap: 8,
  cap_net_bind_service: 10,
  cap_audit_write: 29,
  cap_setfcap: 31,
};

let dropList: string | undefined;

/** Every capability the running kernel knows, except the kept ones, comma-separated. */
function capabilitiesToDrop(): string {
  if (dropList === undefined) {
    const last = Number.parseInt(readFileSync('/proc/sys/kernel/cap_last_cap', 'utf8'), 10);
    if (!Number.isInteger(last) || last < 31) throw new Error(`unexpected /proc/sys/kernel/cap_last_cap: ${last}`);
    const kept = new Set(Object.values(KEPT_CAPABILITIES));
    const drop: number[] = [];
    for (let cap = 0; cap <= last; cap++) if (!kept.has(cap)) drop.push(cap);
    dropList = drop.join(',');
  }
  return dropList;
}

/**
 * The host side of every confined command: `setpriv --pdeathsig KILL` (it
 * gets SIGKILL when the server dies, even by SIGKILL, and --kill-child takes
 * its namespace down with it), the prelude, the build's network namespace,
 * then `unshare` with private mount, PID, IPC and UTS namespaces (and a
 * network namespace of its own when the build has none to enter, unless the
 * network is the host's). `extra` are unshare options of the caller.
 */
function confinedPrefix(confinement: Confinement, extra: string[], userNamespace: boolean): { argv: string[]; ownLoopback: boolean } {
  const ownLoopback = confinement.netns === null && confinement.network !== 'host';
  const argv = [
    '--pdeathsig',
    'KILL',
    '--',
    ...preludePrefix(confinement.cgroupProcs),
    ...(confinement.netns ? ['nsenter', `--net=${confinement.netns}`, '--'] : []),
    // After the network namespace is entered (the host's namespace owns it: root in the build cannot reconfigure it).
    ...(userNamespace ? userNamespacePrefix() : []),
    'unshare',
    '--mount',
    '--pid',
    '--fork',
    '--kill-child',
    '--ipc',
    '--uts',
    ...(ownLoopback ? ['--net'] : []),
    ...extra,
    '--propagation',
    'private',
    '--',
  ];
  return { argv, ownLoopback };
}

export interface SandboxOptions extends Omit<RunOptions, 'cwd' | 'cleanEnv'> {
  /** Working directory inside the chroot (default /). */
  cwd?: string;
  /** Host paths made visible read-only at paths under BIND_ROOT inside the chroot. */
  bindsReadOnly?: { source: string; target: string }[];
  /** The build's confinement (default: none but a loopback-only network of its own). */
  jail?: Confinement;
}

/** Runs `argv` inside the chroot at `root`. Its environment is exactly PATH plus `env`, and only it sees `env`. */
export function runInSandbox(root: string, argv: readonly string[], options: SandboxOptions = {}): Promise<RunResult> {
  for (const bind of options.bindsReadOnly ?? []) {
    const parts = bind.target.slice(BIND_ROOT.length + 1).split('/');
    if (!bind.target.startsWith(`${BIND_ROOT}/`) || parts.some((part) => part === '' || part === '.' || part === '..')) {
      throw new Error(`sandbox bind target must be a plain path under ${BIND_ROOT}: ${bind.target}`);
    }
  }
  const jail = options.jail ?? UNCONFINED;
  const prefix = confinedPrefix(jail, [], true);
  // The host's own resolv.conf only where the build uses the host's network.
  const resolv = jail.resolvConf ?? (jail.network === 'host' ? '/etc/resolv.conf' : '');
  const env = options.env ?? {};
  const names = Object.keys(env);
  for (const name of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`sandbox: invalid environment variable name ${JSON.stringify(name)}`);
  }
  const setup = setupCommand(
    {
      root,
      cwd: options.cwd ?? '/',
      drop: capabilitiesToDrop(),
      resolv,
      loopback: prefix.ownLoopback,
      shares: kernelShares(jail.shareParts),
      binds: options.bindsReadOnly ?? [],
      envNames: names,
    },
    argv,
  );
  const hostArgs = [...prefix.argv, ...setup];
  return run('setpriv', hostArgs, {
    ...options,
    cwd: '/',
    cleanEnv: true,
    // The host side (unshare, the setup) gets PATH and the command's
    // values under names of their own (see namespace-setup.ts): an
    // app's PATH or LD_PRELOAD must not steer root on the host.
    env: { PATH: SYSTEM_PATH, ...Object.fromEntries(Object.entries(env).map(([name, value]) => [`${ENV_PREFIX}${name}`, value])) },
  });
}

/** Runs an admin- or app-written shell script with `sh -c`, inside the chroot only. */
export function runScriptInSandbox(root: string, script: string, options: SandboxOptions = {}): Promise<RunResult> {
  return runInSandbox(root, ['/bin/sh', '-c', script], options);
}

/** Sets up a host command's namespaces like the chroot's (name, loopback, resolv.conf), then execs it. */
const HOST_SETUP = `
set -eu
unset SHLVL
resolv=$1; lo=$2; shift 2
echo localhost > /proc/sys/kernel/hostname
if [ "$lo" = lo ]; then ip link set lo up; fi
if [ -n "$resolv" ] && [ -e /etc/resolv.conf ]; then mount --bind "$resolv" /etc/resolv.conf; fi
exec "$@"
`;

/**
 * Runs a host command (the bootstrap commands that create an image) in the
 * build's jail and in private mount, PID, IPC and UTS namespaces, so that
 * mounts it makes (debootstrap mounts /proc in its target) and processes it
 * starts die with it, and it reaches the network the way the build's
 * commands do.
 */
export function runIsolatedOnHost(argv: readonly string[], options: Omit<RunOptions, 'cleanEnv'> & { jail?: Confinement } = {}): Promise<RunResult> {
  const jail = options.jail ?? UNCONFINED;
  // No user namespace: bootstrap commands (debootstrap) make device nodes, which a user namespace may not.
  const prefix = confinedPrefix(jail, ['--mount-proc'], false);
  return run('setpriv', [...prefix.argv, '/bin/sh', '-c', HOST_SETUP, 'upaas-host', jail.resolvConf ?? '', prefix.ownLoopback ? 'lo' : '', ...argv], {
    ...options,
    cleanEnv: true,
    env: { PATH: SYSTEM_PATH, ...options.env },
  });
}
