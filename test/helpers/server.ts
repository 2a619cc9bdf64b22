/**
 * A real upaas server for scenario tests: `upaas serve` as a child process on
 * random ports, generated keys, and real `git` and `ssh` clients.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ResultPromise, execa } from 'execa';
import { PROJECT, World, merge } from './world.ts';

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export interface KeyPair {
  name: string;
  privateFile: string;
  publicKey: string;
}

/** Key folders, removed when the test process exits. */
const keyDirs: string[] = [];
process.once('exit', () => {
  for (const dir of keyDirs) rmSync(dir, { recursive: true, force: true });
});

/** An ed25519 key pair made by ssh-keygen. */
export async function makeKey(name: string): Promise<KeyPair> {
  const dir = mkdtempSync(join(tmpdir(), `upaas-key-${name}-`));
  keyDirs.push(dir);
  const privateFile = join(dir, 'id_ed25519');
  await execa('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', `${name}@test`, '-f', privateFile]);
  const { stdout } = await execa('cat', [`${privateFile}.pub`]);
  chmodSync(privateFile, 0o600);
  return { name, privateFile, publicKey: String(stdout).trim() };
}

export class TestServer {
  private process: ResultPromise | null = null;
  readonly output: string[] = [];
  sshPort = 0;
  httpPort = 0;

  constructor(readonly world: World) {}

  /** Starts `upaas serve` on random ports; `server` is merged into the config's server section. */
  async start(server: Record<string, unknown> = {}): Promise<void> {
    this.sshPort = await freePort();
    this.httpPort = await freePort();
    this.world.setServer(merge(merge({ host: '127.0.0.1' }, server), { ssh: { port: this.sshPort }, http: { port: this.httpPort } }));
    this.process = execa('node', [join(PROJECT, 'bin/upaas.js'), '-c', this.world.configFile, 'serve'], {
      reject: false,
      cwd: this.world.dir,
      all: true,
      buffer: false,
      // stop() waits for the server's own graceful stop (its builds and commands undone), not execa's 5 s.
      forceKillAfterDelay: 60_000,
    });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`server did not start:\n${this.output.join('')}`)), 20_000);
      this.process?.all?.on('data', (chunk: Buffer) => {
        this.output.push(String(chunk));
        if (this.output.join('').includes('over SSH on')) {
          clearTimeout(timer);
          resolve();
        }
      });
      void this.process?.then(() => reject(new Error(`server exited:\n${this.output.join('')}`)));
    });
  }

  exitResult: unknown = null;

  /** Waits for the server to exit by itself; returns its exit code. */
  async exited(): Promise<number | undefined> {
    const result = await this.process;
    this.exitResult = result;
    return result?.exitCode;
  }

  async stop(): Promise<void> {
    this.process?.kill('SIGTERM');
    this.exitResult = await this.process;
  }

  get pid(): number | undefined {
    return this.process?.pid;
  }

  /** Stops the server and removes the world; returns what builds left behind. */
  async tearDown(): Promise<string[]> {
    await this.stop();
    const leftovers = this.world.leftovers();
    this.world.remove();
    return leftovers;
  }

  /** Environment for git and ssh as `key`'s owner against this server. */
  clientEnv(key: KeyPair): Record<string, string> {
    const known = join(this.world.dir, 'known_hosts');
    writeFileSync(known, '', { flag: 'a' });
    return {
      GIT_SSH_COMMAND: `ssh -i ${key.privateFile} -o IdentitiesOnly=yes -o StrictHostKeyChecking=no -o UserKnownHostsFile=${known} -o LogLevel=ERROR -o BatchMode=yes`,
      GIT_AUTHOR_NAME: 'Test Dev',
      GIT_AUTHOR_EMAIL: 'dev@example.invalid',
      GIT_COMMITTER_NAME: 'Test Dev',
      GIT_COMMITTER_EMAIL: 'dev@example.invalid',
      GIT_CONFIG_GLOBAL: '/dev/null',
    };
  }

  httpUrl(app: string, user?: string, token?: string): string {
    const login = user ? `${encodeURIComponent(user)}:${encodeURIComponent(token ?? '')}@` : '';
    return `http://${login}127.0.0.1:${this.httpPort}/${app}.git`;
  }

  url(app: string): string {
    return `ssh://git@127.0.0.1:${this.sshPort}/${app}.git`;
  }

  /** `ssh -p PORT git@127.0.0.1 COMMAND...` as `key`'s owner. */
  async ssh(key: KeyPair, args: string[], input: string | Buffer = '', options: { bind?: string } = {}) {
    const known = join(this.world.dir, 'known_hosts');
    const bind = options.bind ? ['-b', options.bind] : [];
    const result = await execa(
      'ssh',
      [...bind, '-i', key.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-p', String(this.sshPort), 'git@127.0.0.1', ...args],
      { reject: false, input },
    );
    return { exitCode: result.exitCode ?? -1, stdout: String(result.stdout), stderr: String(result.stderr) };
  }
}
