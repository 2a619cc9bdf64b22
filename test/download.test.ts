/**
 * Package downloads against the real server: `packages download APP
 * [PACKAGE]` over SSH writes the exact archive (its SHA-256 is the package
 * id), refuses a reader of another app in the words it uses for a missing
 * app, and a stored file corrupted in place (same size, same recorded hash)
 * ends the download short with an error, over SSH and over the HTTP API:
 * nobody is handed a complete bad copy.
 */
import { createHash } from 'node:crypto';
import { closeSync, mkdirSync, openSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { type PackageJson, World, metadata } from './helpers/world.ts';

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

describe('package downloads', function () {
  this.timeout(120_000);
  let world: World;
  let server: TestServer;
  const keys: Record<string, KeyPair> = {};
  let adminToken: string;
  let pkg: PackageJson;

  /** `ssh COMMAND` as `user`, its standard output as bytes. */
  async function sshBytes(user: string, ...args: string[]): Promise<{ exitCode: number; stdout: Buffer; stderr: string }> {
    const known = join(world.dir, 'known_hosts');
    const key = keys[user] as KeyPair;
    const result = await execa(
      'ssh',
      ['-i', key.privateFile, '-o', 'IdentitiesOnly=yes', '-o', 'StrictHostKeyChecking=no', '-o', `UserKnownHostsFile=${known}`, '-o', 'LogLevel=ERROR', '-o', 'BatchMode=yes', '-p', String(server.sshPort), 'git@127.0.0.1', ...args],
      { reject: false, encoding: 'buffer', stripFinalNewline: false },
    );
    return { exitCode: result.exitCode ?? -1, stdout: Buffer.from(result.stdout), stderr: Buffer.from(result.stderr).toString('utf8') };
  }

  /** GET `path` over HTTP as the admin: status, the bytes that came, and whether all of them came. */
  function download(path: string, headers: Record<string, string> = {}): Promise<{ status: number; length: number; body: Buffer; complete: boolean }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: server.httpPort, path, headers: { Authorization: `Bearer ${adminToken}`, ...headers }, agent: false }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', () => undefined);
        response.on('close', () =>
          resolve({ status: response.statusCode ?? 0, length: Number(response.headers['content-length']), body: Buffer.concat(chunks), complete: response.complete }),
        );
      });
      req.on('error', reject);
      req.end();
    });
  }

  before(async () => {
    for (const name of ['admin', 'reader', 'stranger']) keys[name] = await makeKey(name);
    world = new World();
    expect((await world.cliWithInput((keys.admin as KeyPair).publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    for (const name of ['reader', 'stranger']) expect((await world.cliWithInput((keys[name] as KeyPair).publicKey, 'users', 'add', name)).exitCode).to.equal(0);
    adminToken = (await world.cli('tokens', 'create', '--user', 'admin')).stdout.trim().split('\n').pop() as string;
    for (const repo of ['site', 'other']) expect((await world.cli('repos', 'create', repo)).exitCode).to.equal(0);
    expect((await world.cli('repos', 'grant', 'site', 'reader', 'read')).exitCode).to.equal(0);
    expect((await world.cli('repos', 'grant', 'other', 'stranger', 'read')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
    const dir = join(world.dir, 'client');
    mkdirSync(dir, { recursive: true });
    const git = (...args: string[]) => execa('git', args, { cwd: dir, env: server.clientEnv(keys.admin as KeyPair), reject: false, all: true });
    await git('init', '-q', '-b', 'main');
    writeFileSync(join(dir, '.upaas.yml'), metadata({ interpreter: { type: 'static' } }));
    await git('add', '-A');
    await git('commit', '-qm', 'first');
    const pushed = await git('push', server.url('site'), 'main');
    expect(pushed.exitCode, String(pushed.all)).to.equal(0);
    [pkg] = (await world.packages('site')) as [PackageJson];
  });

  after(async () => {
    if (server) expect(await server.tearDown()).to.deep.equal([]);
  });

  it('writes the exact archive over SSH: the current package, or one by id or prefix', async () => {
    for (const args of [[], [pkg.id], [pkg.id.slice(0, 7)]]) {
      const result = await sshBytes('reader', 'packages', 'download', 'site', ...args);
      expect(result.exitCode, result.stderr).to.equal(0);
      expect(result.stdout.length, args.join(' ')).to.equal(pkg.bytes);
      expect(sha256(result.stdout), args.join(' ')).to.equal(pkg.id);
    }
    const unknown = await sshBytes('reader', 'packages', 'download', 'site', 'abcdef0');
    expect([unknown.exitCode, unknown.stdout.length, unknown.stderr]).to.deep.equal([1, 0, 'upaas packages download: site has no package abcdef0\n']);
  });

  it('refuses a reader of another app with the words it has for a missing app', async () => {
    const refused = await sshBytes('stranger', 'packages', 'download', 'site');
    const missing = await sshBytes('stranger', 'packages', 'download', 'nosuchapp');
    expect(refused.exitCode).to.equal(1);
    expect(refused.stdout.length).to.equal(0);
    expect(refused.stderr).to.equal('upaas packages download: repository site does not exist or you have no access to it\n');
    expect([refused.exitCode, refused.stderr]).to.deep.equal([missing.exitCode, missing.stderr.replace('nosuchapp', 'site')]);
    expect((await sshBytes('stranger', 'packages', 'download', 'other')).stderr).to.equal('upaas packages download: other has no current package\n');
  });

  it('a stored file corrupted in place ends the download short with an error, over SSH and over HTTP', async () => {
    const file = world.packageFile('site', pkg);
    const size = statSync(file).size;
    expect(size).to.equal(pkg.bytes);
    // Same size, same recorded hash: only reading every byte finds it.
    const fd = openSync(file, 'r+');
    writeSync(fd, Buffer.alloc(64, 0x55), 0, 64, Math.floor(size / 2));
    closeSync(fd);
    const over = await sshBytes('admin', 'packages', 'download', 'site');
    expect(over.exitCode).to.equal(2);
    expect(over.stdout.length).to.be.below(size);
    expect(over.stderr).to.equal(
      `upaas packages download: system error: the stored file of package ${pkg.id.slice(0, 12)} of site does not match its SHA-256; the download was stopped (an admin may run "doctor --deep")\n`,
    );
    const http = await download(`/api/v1/apps/site/packages/current/archive`);
    expect(http.status).to.equal(200);
    expect(http.length).to.equal(size);
    expect(http.complete, 'the response was cut').to.equal(false);
    expect(http.body.length).to.be.below(size);
    // A range of the first bytes waits for the whole file's check too.
    const range = await download(`/api/v1/apps/site/packages/${pkg.id}/archive`, { Range: 'bytes=0-9' });
    expect([range.status, range.length, range.complete]).to.deep.equal([206, 10, false]);
    expect(range.body.length).to.be.below(10);
    // The detail is for the server log.
    const log = server.output.join('');
    expect(log).to.include(`api: download of package ${pkg.id} of site:`);
    expect(log).to.include('packages download site:');
  });
});
