/**
 * The SSH transport: public-key authentication only (the key names the user,
 * the SSH user name is ignored); an exec request is either an allowlisted git
 * service on a repo the user may use, or an admin command. Shells, subsystems
 * and everything else are refused.
 *
 * What a client may hold is bounded: connections in all and per source
 * address (server.ssh.max_connections[_per_address]), the time to log in
 * (server.ssh.login_grace, counted from the TCP connect: a client that never
 * says hello is dropped too), channels per connection (server.ssh.max_sessions),
 * git processes per user (server.git_per_user), what it sends on standard
 * input and what it leaves unread of the output.
 */
import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { type Server as NetServer, type Socket, createServer } from 'node:net';
import { join } from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import type { ServerChannel } from 'ssh2';
import { ssh2 } from '../ssh2.ts';
import { dispatch } from '../commands/dispatch.ts';
import { readLimited } from '../commands/input.ts';
import { sendBytes } from '../commands/output.ts';
import { AccessError, openRepo } from '../core/access.ts';
import { type GitService, GIT_SERVICES, isGitService, runGitService } from '../git/service.ts';
import { RepoError } from '../git/repos.ts';
import { BoundedOutput, MAX_HELD_BYTES } from '../process/bounded-output.ts';
import { type User, fingerprintOf } from '../state/users.ts';
import { splitCommandLine } from './command-line.ts';
import type { TransportOptions } from './options.ts';
import { addressKey, wait } from '../core/login-throttle.ts';

/**
 * The ciphers offered, AES only: OpenSSH clients pick chacha20-poly1305 first
 * when it is offered, and ssh2 runs it in JavaScript unless its optional
 * native part is built (it is not: npm ci runs no ssh2 install script), which
 * made downloads about 1.5x slower than AES (OpenSSL, AES-NI).
 */
const CIPHERS = ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'aes128-ctr', 'aes192-ctr', 'aes256-ctr'] as const;

/** Credentials a client may try on one connection (OpenSSH's MaxAuthTries). */
const MAX_AUTH_TRIES = 6;

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

/** An ed25519 key pair. ssh2 1.17 now and then writes a malformed key (a dropped leading zero byte); such pairs are made again. */
function generateEd25519(): { private: string; public: string } {
  for (;;) {
    const pair = ssh2().utils.generateKeyPairSync('ed25519', { comment: 'upaas host key' });
    const parsed = ssh2().utils.parseKey(pair.private);
    if (!(parsed instanceof Error) && !Array.isArray(parsed) && !(ssh2().utils.parseKey(pair.public) instanceof Error)) return pair;
  }
}

/** Connections by source address, for the caps. */
class ConnectionCount {
  private total = 0;
  private readonly byAddress = new Map<string, number>();

  constructor(
    private readonly max: number,
    private readonly perAddress: number,
  ) {}

  /** Counts a new connection from `address`: a release function, or a reason to refuse it. */
  admit(from: string): (() => void) | string {
    // An IPv6 client counts by its /64, as the login throttle counts it.
    const address = addressKey(from);
    const mine = this.byAddress.get(address) ?? 0;
    if (this.total >= this.max) return `${this.total} connections are open (server.ssh.max_connections)`;
    if (mine >= this.perAddress) return `${mine} connections from ${address} are open (server.ssh.max_connections_per_address)`;
    this.total += 1;
    this.byAddress.set(address, mine + 1);
    return () => {
      this.total -= 1;
      const left = (this.byAddress.get(address) ?? 1) - 1;
      if (left <= 0) this.byAddress.delete(address);
      else this.byAddress.set(address, left);
    };
  }
}

export interface SshServer {
  port: number;
  close(): void;
}

export async function startSsh(options: TransportOptions): Promise<SshServer> {
  const { services, log, throttle } = options;
  const limits = services.config.server.ssh;
  const counts = new ConnectionCount(limits.max_connections, limits.max_connections_per_address);
  /** Sockets accepted but not yet logged in, by "address|port", with their login timers. */
  const loggingIn = new Map<string, NodeJS.Timeout>();
  const ssh = new (ssh2().Server)({ hostKeys: [await hostKey(services.config.paths.state)], algorithms: { cipher: [...CIPHERS] } }, (client, info) => {
    const address = info.ip ?? 'unknown';
    const loginTimer = loggingIn.get(`${info.ip}|${info.port}`);
    let user: User | null = null;
    let tries = 0;
    let rejected = false;
    // Build lines are small writes: without this, Nagle's algorithm holds each
    // one back until the client's delayed ACK (about 40 ms per line).
    // (ssh2's Connection has setNoDelay; its type definitions miss it.)
    (client as unknown as { setNoDelay(on: boolean): void }).setNoDelay(true);
    client.on('error', (error) => log(`ssh: client ${address}: ${error.message}`));
    client.on('close', () => {
      // A connection that tried credentials and never got in is one failed login.
      if (!user && rejected) throttle.failed(address, 'ssh: no key accepted');
    });
    client.on('authentication', (ctx) => {
      const refuse = () => {
        rejected = true;
        // A hot address waits for each refusal; everyone else gets it at once.
        void wait(throttle.delay(address)).then(() => {
          try {
            ctx.reject(['publickey']);
          } catch {
            // the client left meanwhile
          }
        });
      };
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      if (++tries > MAX_AUTH_TRIES) {
        rejected = true;
        client.end();
        return;
      }
      const record = services.state.users.keyByFingerprint(fingerprintOf(ctx.key.data));
      if (!record) return refuse();
      const known = ssh2().utils.parseKey(record.publicKey);
      if (known instanceof Error || Array.isArray(known)) return refuse();
      const blob = known.getPublicSSH();
      if (blob.length !== ctx.key.data.length || !timingSafeEqual(blob, ctx.key.data)) return refuse();
      if (ctx.signature && known.verify(ctx.blob as Buffer, ctx.signature, ctx.hashAlgo) !== true) return refuse();
      const owner = services.state.users.get(record.user);
      if (!owner) return refuse();
      // A key that is offered (no signature yet) is not a login; the signed request is.
      if (ctx.signature) user = owner;
      return ctx.accept();
    });
    // Aborted when the connection is gone: a channel whose caller hung up reports its own close only once its input was read to the end.
    const connection = new AbortController();
    client.on('close', () => connection.abort());
    client.on('ready', () => {
      clearTimeout(loginTimer);
      let sessions = 0;
      client.on('session', (acceptSession, rejectSession) => {
        if (sessions >= limits.max_sessions) return rejectSession();
        sessions += 1;
        const session = acceptSession();
        session.once('close', () => (sessions -= 1));
        let protocol: string | undefined;
        session.on('env', (accept, reject, env) => {
          if (env.key === 'GIT_PROTOCOL') {
            protocol = env.val;
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
        session.on('exec', (accept, _reject, request) => {
          const channel = accept();
          handleExec(request.command, channel, user as User, protocol, connection.signal, options).then(
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
  // Own listener: admission and the login timer start at the TCP connect,
  // before ssh2 has seen a byte; admitted sockets are handed to ssh2.
  const listener: NetServer = createServer((socket: Socket) => {
    const address = socket.remoteAddress ?? 'unknown';
    const admitted = counts.admit(address);
    if (typeof admitted === 'string') {
      log(`ssh: refused a connection from ${address}: ${admitted}`);
      socket.destroy();
      return;
    }
    const key = `${socket.remoteAddress}|${socket.remotePort}`;
    const timer = setTimeout(() => {
      log(`ssh: dropped ${address}: not logged in within ${limits.login_grace}s (server.ssh.login_grace)`);
      socket.destroy();
    }, limits.login_grace * 1000);
    loggingIn.set(key, timer);
    socket.once('close', () => {
      clearTimeout(timer);
      loggingIn.delete(key);
      admitted();
    });
    socket.on('error', () => undefined);
    ssh.injectSocket(socket);
  });
  await new Promise<void>((resolve, reject) => {
    listener.once('error', reject);
    listener.listen(options.port, options.host, () => resolve());
  });
  const address = listener.address();
  return {
    port: typeof address === 'object' && address ? address.port : options.port,
    close: () => {
      listener.close();
      ssh.close();
    },
  };
}

/** How long a command's last stderr lines may wait for the client to take its output first. */
const STDERR_FLUSH_MS = 10_000;

type Pending = { writableLength: number };

/**
 * A command's stderr, in few large writes and after what it wrote to stdout.
 * Lines are gathered and sent together on the next turn of the event loop:
 * each write is an SSH packet, and a flood of short lines (a `run` of `yes >&2`)
 * made a million tiny packets and buffers per window, over a gigabyte. And
 * they wait while stdout has bytes waiting: both share the channel's window,
 * and ssh2 sends a held-back stderr chunk only when no stdout chunk waits
 * (else the error line after a long output was lost). What is gathered is
 * bounded (MAX_HELD_BYTES): past it, writes are left out and counted.
 */
function gatheredStderr(channel: ServerChannel): { write: (text: string) => void; holding: () => boolean } {
  const err = new BoundedOutput(channel.stderr);
  let gathered: string[] = [];
  let bytes = 0;
  let left = 0;
  let scheduled = false;
  const flush = () => {
    // ('drain' comes only after a write that filled the buffer: a short wait is asked for instead.)
    if ((channel as unknown as Pending).writableLength > 0 && !channel.destroyed) {
      setTimeout(flush, 10);
      return;
    }
    scheduled = false;
    const text = gathered.join('');
    gathered = [];
    bytes = 0;
    if (text) err.write(text);
    if (left > 0) err.write(`[... ${left} writes to stderr left out here: the client read its output too slowly ...]\n`);
    left = 0;
  };
  return {
    write: (text) => {
      if (bytes + text.length > MAX_HELD_BYTES) left += 1;
      else {
        gathered.push(text);
        bytes += text.length;
      }
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    holding: () => scheduled,
  };
}

/**
 * Resolves once what was written to the channel has gone out, stdout then
 * stderr (or the channel closed, or STDERR_FLUSH_MS passed): the client gets
 * the last lines before the exit status and the end.
 */
async function outputSent(channel: ServerChannel, err: { holding: () => boolean } | null): Promise<void> {
  const deadline = Date.now() + STDERR_FLUSH_MS;
  const waiting = () =>
    (channel as unknown as Pending).writableLength > 0 || (channel.stderr as unknown as Pending).writableLength > 0 || Boolean(err?.holding());
  while (waiting() && !channel.destroyed && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function handleExec(
  commandLine: string,
  channel: ServerChannel,
  user: User,
  protocol: string | undefined,
  connection: AbortSignal,
  options: TransportOptions,
): Promise<number> {
  let words: string[];
  try {
    words = splitCommandLine(commandLine);
  } catch (error) {
    channel.stderr.write(`upaas: cannot parse the command: ${(error as Error).message}\n`);
    return 64;
  }
  const controller = new AbortController();
  // Listeners on the connection's and the server's signals (which outlive this command) go when it ends.
  const ended = new AbortController();
  try {
    channel.on('close', () => controller.abort());
    connection.addEventListener('abort', () => controller.abort(), { once: true, signal: ended.signal });
    if (connection.aborted) controller.abort();
    const [name = '', ...args] = words;
    // A push is the queue's to wait for at stop (its build); it is never cut by the commands' grace.
    if (isGitService(name)) {
      return await gitOverSsh(name, args, channel, user, protocol, controller.signal, options);
    }
    options.inFlight.signal.addEventListener('abort', () => controller.abort(), { once: true, signal: ended.signal });
    // A command that comes after the grace is over starts cancelled.
    if (options.inFlight.signal.aborted) controller.abort();
    return await runCommand(words, channel, user, controller.signal, options);
  } finally {
    ended.abort();
  }
}

/** An admin command over SSH: the dispatcher with the channel as its standard streams. */
async function runCommand(words: string[], channel: ServerChannel, user: User, signal: AbortSignal, options: TransportOptions): Promise<number> {
  const out = new BoundedOutput(channel);
  const err = gatheredStderr(channel);
  const code = await options.inFlight.track(() =>
    dispatch(words, {
      user,
      local: false,
      services: () => options.services,
      io: {
        out: (text) => out.write(text),
        err: err.write,
        drain: () => out.drain(),
        binary: async (data) => {
          // What was written as text goes first; then the bytes, with the channel's own flow control.
          await out.drain();
          await sendBytes(data, channel);
        },
        // The channel's stderr has the channel's flow control; it is the channel that closes.
        binaryErr: (data) => sendBytes(data, channel.stderr, channel),
        input: (limit) => readLimited(channel, limit),
        signal,
      },
    }),
  );
  await outputSent(channel, err);
  return code;
}

async function gitOverSsh(
  service: GitService,
  args: string[],
  channel: ServerChannel,
  user: User,
  protocol: string | undefined,
  signal: AbortSignal,
  options: TransportOptions,
): Promise<number> {
  if (args.length !== 1) {
    channel.stderr.write(`upaas: ${service} takes one repository path\n`);
    return 64;
  }
  let repo;
  try {
    repo = openRepo(options.services, user, (args[0] as string).replace(/^\/+/, ''), GIT_SERVICES[service]);
  } catch (error) {
    if (!(error instanceof AccessError || error instanceof RepoError)) throw error;
    channel.stderr.write(`upaas: ${error.message}\n`);
    return 1;
  }
  const release = options.gitSlots.take(user.name);
  if (!release) {
    channel.stderr.write(`upaas: you have ${options.services.config.server.git_per_user} git operations running (server.git_per_user); try again when one ends\n`);
    return 1;
  }
  try {
    return await runGitService(
      service,
      repo.path,
      { stdin: channel, stdout: channel, stderr: channel.stderr },
      { app: repo.name, pusher: user.name, hooks: options.hooks, receivePacks: options.receivePacks, protocol },
      signal,
    );
  } finally {
    release();
  }
}
