/**
 * The SSH transport: public-key authentication only (the key names the user,
 * the SSH user name is ignored); an exec request is either an allowlisted git
 * service on a repo the user may use, or an admin command. Shells, subsystems
 * and everything else are refused.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import ssh2 from 'ssh2';
import { dispatch } from '../commands/dispatch.ts';
import { type GitService, GIT_SERVICES, isGitService, runGitService } from '../git/service.ts';
import { RepoError, repoNameFrom, repoPath } from '../git/repos.ts';
import { type User, allows, fingerprintOf } from '../state/users.ts';
import { splitCommandLine } from './command-line.ts';
import type { TransportOptions } from './options.ts';

type SshOptions = TransportOptions;

/** The server's host key, generated into paths.state on first start. */
export async function hostKey(stateDir: string): Promise<Buffer> {
  const file = join(stateDir, 'ssh_host_ed25519_key');
  if (!existsSync(file)) {
    const pair = generateEd25519();
    await writeFile(file, pair.private, { mode: 0o600 });
    await writeFile(`${file}.pub`, `${pair.public}\n`);
  }
  return readFile(file);
}

/**
 * An ed25519 key pair. ssh2 1.17 now and then (about 1 in 300) drops a leading
 * zero byte of the public key and writes a malformed key; such pairs are made again.
 */
function generateEd25519(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'upaas host key' });
    const parsed = ssh2.utils.parseKey(pair.private);
    if (!(parsed instanceof Error) && !Array.isArray(parsed) && !(ssh2.utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}

export async function startSsh(options: SshOptions): Promise<ssh2.Server> {
  const { services, log } = options;
  const server = new ssh2.Server({ hostKeys: [await hostKey(services.config.paths.state)] }, (client) => {
    let user: User | null = null;
    // Build lines are small writes: without this, Nagle's algorithm holds each
    // one back until the client's delayed ACK (about 40 ms per line).
    // (ssh2's Connection has setNoDelay; its type definitions miss it.)
    (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    client.on('error', (error) => log(`ssh: client error: ${error.message}`));
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const record = services.state.users.keyByFingerprint(fingerprintOf(ctx.key.data));
      if (!record) return ctx.reject(['publickey']);
      const known = ssh2.utils.parseKey(record.publicKey);
      if (known instanceof Error || Array.isArray(known)) return ctx.reject(['publickey']);
      const blob = known.getPublicSSH();
      if (blob.length !== ctx.key.data.length || !timingSafeEqual(blob, ctx.key.data)) return ctx.reject(['publickey']);
      if (ctx.signature && known.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) !== true) return ctx.reject(['publickey']);
      user = services.state.users.get(record.user);
      return user ? ctx.accept() : ctx.reject(['publickey']);
    });
    client.on('ready', () => {
      client.on('session', (acceptSession) => {
        const session = acceptSession();
        let protocol: string | undefined;
        session.on('env', (accept, reject, info) => {
          if (info.key === 'GIT_PROTOCOL') {
            protocol = info.val;
            accept?.();
          } else reject?.();
        });
        session.on('pty', (_accept, reject) => reject?.());
        session.on('shell', (accept) => {
          const channel = accept();
          channel.stderr.write('upaas: no interactive shell here; try: ssh -p PORT git@HOST help\r\n');
          channel.exit(1);
          channel.end();
        });
        session.on('subsystem', (_accept, reject) => reject());
        session.on('exec', (accept, _reject, info) => {
          const channel = accept();
          handleExec(info.command, channel, user as User, protocol, options).then(
            (code) => {
              channel.exit(code);
              channel.end();
            },
            (error: unknown) => {
              log(`ssh: ${(error as Error).stack ?? String(error)}`);
              channel.stderr.write('upaas: system error\n');
              channel.exit(2);
              channel.end();
            },
          );
        });
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  return server;
}

async function handleExec(
  commandLine: string,
  channel: ssh2.ServerChannel,
  user: User,
  protocol: string | undefined,
  options: SshOptions,
): Promise<number> {
  const { services } = options;
  let words: string[];
  try {
    words = splitCommandLine(commandLine);
  } catch (error) {
    channel.stderr.write(`upaas: cannot parse the command: ${(error as Error).message}\n`);
    return 64;
  }
  const controller = new AbortController();
  channel.on('close', () => controller.abort());
  const [name = '', ...args] = words;
  if (isGitService(name)) {
    return gitOverSsh(name, args, channel, user, protocol, controller.signal, options);
  }
  return dispatch(words, {
    user,
    local: false,
    services: () => services,
    io: {
      out: (text) => channel.write(text),
      err: (text) => channel.stderr.write(text),
      input: () =>
        new Promise<string>((resolve) => {
          let data = '';
          channel.on('data', (chunk: Buffer) => (data += chunk.toString('utf8')));
          channel.on('end', () => resolve(data));
        }),
      signal: controller.signal,
    },
  });
}

async function gitOverSsh(
  service: GitService,
  args: string[],
  channel: ssh2.ServerChannel,
  user: User,
  protocol: string | undefined,
  signal: AbortSignal,
  options: SshOptions,
): Promise<number> {
  const { services } = options;
  if (args.length !== 1) {
    channel.stderr.write(`upaas: ${service} takes one repository path\n`);
    return 64;
  }
  let app: string;
  let path: string;
  try {
    app = repoNameFrom((args[0] as string).replace(/^\/+/, ''));
    const needs = GIT_SERVICES[service];
    if (!allows(services.state.users.accessTo(user, app), needs)) {
      channel.stderr.write(`upaas: repository ${app} does not exist or you have no ${needs} access to it\n`);
      return 1;
    }
    path = repoPath(services.config.paths.repos, app);
  } catch (error) {
    if (!(error instanceof RepoError)) throw error;
    channel.stderr.write(`upaas: ${error.message}\n`);
    return 1;
  }
  return runGitService(
    service,
    path,
    { stdin: channel, stdout: channel, stderr: channel.stderr },
    { app, pusher: user.name, hooks: options.hooks, receivePacks: options.receivePacks, protocol },
    signal,
  );
}
