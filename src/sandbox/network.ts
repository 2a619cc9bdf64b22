/**
 * A build's network (builder.network):
 *
 * - `isolated` (default): a network namespace of its own whose only way out
 *   is slirp4netns, user-mode networking that makes each connection again as
 *   an ordinary socket of the host. --disable-host-loopback keeps it off the
 *   host's 127.0.0.1; the host's other addresses (and link-local ones, where
 *   clouds keep their metadata service) are refused by an nftables rule that
 *   matches slirp4netns's sockets by their cgroup. DNS goes through
 *   slirp4netns (10.0.2.3) to the host's resolvers. So package mirrors and
 *   language registries work, the server's own ports and the host's services
 *   do not.
 * - `none`: a namespace with only a loopback interface.
 * - `host`: the host's network, as before this existed; unsafe on a shared
 *   server (a build reaches every port on the host).
 *
 * A namespace lives as a bind mount of its nsfs file in the build's temp
 * folder, so every command of the build joins the same one; it and its
 * slirp4netns (which dies with the server too) are undone by the build's
 * cleanup stack.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import type { Cleanup } from '../process/cleanup.ts';
import { SYSTEM_PATH, runChecked as must } from '../process/run.ts';
import { type Layout, networkCgroup } from './cgroups.ts';

export type NetworkMode = 'isolated' | 'none' | 'host';

/** slirp4netns's fixed addresses: the DNS forwarder inside the namespace. */
const SLIRP_DNS = '10.0.2.3';
const TABLE = 'upaas';
const READY_TIMEOUT_MS = 10_000;

export interface BuildNetwork {
  mode: NetworkMode;
  /** The namespace file commands enter (null for `host`). */
  netns: string | null;
  /** What commands see as /etc/resolv.conf (null: the image's own, or the host's for `host`). */
  resolvConf: string | null;
}

/** The nameserver addresses of the host's resolv.conf (slirp4netns forwards DNS to the first). */
async function hostResolvers(): Promise<{ v4: string[]; v6: string[] }> {
  const text = await readFile('/etc/resolv.conf', 'utf8').catch(() => '');
  const all = text
    .split('\n')
    .map((line) => /^\s*nameserver\s+([0-9a-fA-F:.]+)\s*$/.exec(line)?.[1])
    .filter((address): address is string => address !== undefined);
  return { v4: all.filter((a) => a.includes('.')), v6: all.filter((a) => a.includes(':')) };
}

/** The nftables table that keeps slirp4netns's sockets off the host's own and link-local addresses. */
export function filterRules(cgroup: { nftPath: string; level: number }, resolvers: { v4: string[]; v6: string[] }, blocked: readonly string[] = []): string {
  const mine = `socket cgroupv2 level ${cgroup.level} ${JSON.stringify(cgroup.nftPath)}`;
  const dns = (family: 'ip' | 'ip6', addresses: string[]) =>
    addresses.length > 0 ? [`    ${mine} meta l4proto { tcp, udp } th dport 53 ${family} daddr { ${addresses.join(', ')} } accept`] : [];
  // A TCP connection gets a reset (slirp4netns then refuses the build's at once; an ICMP error left it hanging).
  const refuse = (match: string) => [`    ${mine} meta l4proto tcp ${match} counter reject with tcp reset`, `    ${mine} ${match} counter reject`];
  return [
    `table inet ${TABLE}`,
    `delete table inet ${TABLE}`,
    `table inet ${TABLE} {`,
    '  chain builds_out {',
    '    type filter hook output priority filter; policy accept;',
    // The host's resolvers answer DNS for builds, wherever they listen.
    ...dns('ip', resolvers.v4),
    ...dns('ip6', resolvers.v6),
    ...refuse('fib daddr type local'),
    ...refuse('ip daddr 169.254.0.0/16'),
    ...refuse('ip6 daddr fe80::/10'),
    // The admin's own (builder.blocked): a LAN, other clouds' metadata services ...
    ...blocked.flatMap((network) => refuse(`${network.includes(':') ? 'ip6' : 'ip'} daddr ${network}`)),
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Per process: the rules are put in place once (atomically replacing what an earlier start left). */
let filter: Promise<{ procs: string }> | null = null;

function ensureFilter(layout: Layout, blocked: readonly string[]): Promise<{ procs: string }> {
  filter ??= (async () => {
    const cgroup = await networkCgroup(layout);
    if (cgroup === null) {
      throw new Error(
        'builder.network: isolated needs a cgroup v2 hierarchy (at /sys/fs/cgroup or /sys/fs/cgroup/unified) to keep builds off the host\'s addresses; set builder.network to none or host',
      );
    }
    await must(
      "builder.network: isolated: cannot install the nftables rules that keep builds off the host's addresses",
      'nft',
      ['-f', '-'],
      { input: filterRules(cgroup, await hostResolvers(), blocked) },
    );
    return { procs: cgroup.procs };
  })();
  filter.catch(() => (filter = null));
  return filter;
}

/** Starts slirp4netns for the namespace at `netns`, in the network cgroup; resolves once the namespace is configured. */
async function startSlirp(netns: string, procs: string): Promise<{ helper: { kill(signal: NodeJS.Signals): boolean } & PromiseLike<unknown> }> {
  const helper = execa(
    'setpriv',
    [
      '--pdeathsig',
      'KILL',
      '--',
      '/bin/sh',
      '-c',
      // Joins the cgroup before it opens a single socket.
      'echo 0 > "$1" && shift && exec "$@"',
      'upaas-network',
      procs,
      'slirp4netns',
      '--configure',
      '--mtu=65520',
      '--disable-host-loopback',
      '--enable-sandbox',
      '--netns-type=path',
      '--ready-fd=3',
      netns,
      'tap0',
    ],
    { stdio: ['ignore', 'ignore', 'pipe', 'pipe'], buffer: false, reject: false, cleanup: true, extendEnv: false, env: { PATH: SYSTEM_PATH } },
  );
  let stderr = '';
  helper.stderr?.on('data', (chunk: Buffer) => (stderr = `${stderr}${chunk}`.slice(-2000)));
  const ready = helper.stdio[3] as NodeJS.ReadableStream;
  const outcome = await new Promise<'ready' | string>((resolve) => {
    const timer = setTimeout(() => resolve('it did not get ready in time'), READY_TIMEOUT_MS);
    ready.once('data', () => {
      clearTimeout(timer);
      resolve('ready');
    });
    void helper.then((result) => {
      clearTimeout(timer);
      resolve(`it exited with ${result.exitCode ?? result.signal}`);
    });
  });
  if (outcome !== 'ready') {
    helper.kill('SIGKILL');
    await helper;
    throw new Error(`cannot start slirp4netns for the build's network: ${outcome}${stderr.trim() ? `: ${stderr.trim().split('\n').slice(-3).join(' ')}` : ''}`);
  }
  // Wrapped: a subprocess is a thenable, and returning it bare would wait for its end.
  return { helper };
}

/** Makes the build's network in `dir`; what it made is undone by `cleanup`. */
export async function openNetwork(dir: string, mode: NetworkMode, layout: Layout, cleanup: Cleanup, blocked: readonly string[] = []): Promise<BuildNetwork> {
  if (mode === 'host') return { mode, netns: null, resolvConf: null };
  const filterReady = mode === 'isolated' ? ensureFilter(layout, blocked) : null;
  const netns = join(dir, 'netns');
  await writeFile(netns, '', { mode: 0o600 });
  await must('cannot make the build\'s network namespace', 'unshare', [`--net=${netns}`, 'true']);
  cleanup.defer('the network namespace', () => must('cannot release the build\'s network namespace', 'umount', ['--lazy', '--', netns]));
  await must('cannot bring up the loopback interface', 'nsenter', [`--net=${netns}`, '--', 'ip', 'link', 'set', 'lo', 'up']);
  if (mode === 'none') return { mode, netns, resolvConf: null };
  const { procs } = await (filterReady as Promise<{ procs: string }>);
  const { helper } = await startSlirp(netns, procs);
  cleanup.defer('slirp4netns', async () => {
    helper.kill('SIGKILL');
    await helper;
  });
  const resolvConf = join(dir, 'resolv.conf');
  await writeFile(resolvConf, `nameserver ${SLIRP_DNS}\n`, { mode: 0o644 });
  return { mode, netns, resolvConf };
}
