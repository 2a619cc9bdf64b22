/**
 * Trust between the users of one server, tried as the attackers of the
 * hardening review would: a writer of one repo (`mine`), a reader of another
 * (`victim`), and a key nobody knows, against the real server over SSH and HTTP.
 */
import { statSync, writeFileSync, chmodSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { type KeyPair, TestServer, makeKey } from './helpers/server.ts';
import { World, metadata } from './helpers/world.ts';

describe('access between the users of one server', function () {
  this.timeout(180_000);
  let world: World;
  let server: TestServer;
  let admin: KeyPair;
  let writer: KeyPair;
  let reader: KeyPair;
  let attacker: KeyPair;

  before(async () => {
    [admin, writer, reader, attacker] = await Promise.all([makeKey('admin'), makeKey('writer'), makeKey('reader'), makeKey('attacker')]);
  });

  beforeEach(async () => {
    world = new World();
    expect((await world.cliWithInput(admin.publicKey, 'users', 'add', 'admin', '--admin')).exitCode).to.equal(0);
    server = new TestServer(world);
    await server.start();
    const as = async (args: string[], input = '') => {
      const r = await server.ssh(admin, args, input);
      expect(r.exitCode, `${args.join(' ')}: ${r.stderr}`).to.equal(0);
      return r;
    };
    await as(['users', 'add', 'writer'], writer.publicKey);
    await as(['users', 'add', 'reader'], reader.publicKey);
    for (const repo of ['mine', 'victim']) await as(['repos', 'create', repo]);
    await as(['repos', 'grant', 'mine', 'writer', 'write']);
    await as(['repos', 'grant', 'victim', 'reader', 'read']);
  });

  afterEach(async () => {
    expect(await server.tearDown()).to.deep.equal([]);
  });

  /** Pushes one commit of `files` to `app` as `key`'s owner. */
  async function push(app: string, files: Record<string, string>, key: KeyPair = admin) {
    const dir = join(world.dir, 'clients', `${app}-${key.name}-${Date.now()}`);
    await execa('mkdir', ['-p', dir]);
    for (const [path, content] of Object.entries(files)) writeFileSync(join(dir, path), content);
    const env = server.clientEnv(key);
    const run = (...args: string[]) => execa('git', args, { cwd: dir, env, reject: false, all: true });
    await run('init', '-q', '-b', 'main');
    await run('add', '-A');
    await run('commit', '-qm', 'app');
    return run('push', server.url(app), 'main');
  }

  const SECRET_APP = { '.upaas.yml': metadata({ interpreter: { type: 'static' }, env: { VICTIM_SECRET: 's3cr3t-value' }, actions: { setup: { main: 'echo "secret is $VICTIM_SECRET"' } } }) };

  /** Every repo command, with its flags before and after the repo, as `args(repo)`. */
  const REPO_COMMANDS: { needs: 'read' | 'write'; args: (repo: string) => string[] }[] = [
    { needs: 'write', args: (repo) => ['build', '--rev', 'mine', repo] },
    { needs: 'write', args: (repo) => ['build', repo, '--rev', 'mine'] },
    { needs: 'write', args: (repo) => ['build', '--interpreter', 'mine', '--fresh', repo] },
    { needs: 'write', args: (repo) => ['build', '--fresh', repo] },
    { needs: 'read', args: (repo) => ['builds', '--json', repo] },
    { needs: 'read', args: (repo) => ['builds', repo, '--json'] },
    { needs: 'read', args: (repo) => ['log', '--no-follow', repo] },
    { needs: 'read', args: (repo) => ['log', repo, '1', '--no-follow'] },
    { needs: 'read', args: (repo) => ['packages', '--json', repo] },
    { needs: 'read', args: (repo) => ['packages', repo, '--json'] },
    { needs: 'read', args: (repo) => ['repos', 'info', '--json', repo] },
    { needs: 'read', args: (repo) => ['repos', 'info', repo, '--json'] },
  ];

  it('commands parse before they authorise: no order of words checks one repo and runs on another', async () => {
    expect((await push('victim', SECRET_APP)).exitCode).to.equal(0);
    const builds = async () => JSON.parse((await server.ssh(admin, ['builds', 'victim', '--json'])).stdout) as unknown[];
    expect(await builds()).to.have.length(1);
    for (const command of REPO_COMMANDS) {
      const r = await server.ssh(writer, command.args('victim'));
      const shown = command.args('victim').join(' ');
      expect(r.exitCode, `${shown}: ${r.stdout}${r.stderr}`).to.equal(1);
      expect(r.stderr, shown).to.include('repository victim does not exist or you have no access to it');
      expect(`${r.stdout}${r.stderr}`, shown).to.not.include('s3cr3t');
    }
    expect(await builds(), 'the writer of mine built nothing of victim').to.have.length(1);
    for (const words of [['repos', 'delete', 'mine', '--yes'], ['repos', 'grant', 'victim', 'writer', 'write'], ['repos', 'revoke', 'mine', 'writer'], ['repos', 'create', 'third']]) {
      const r = await server.ssh(writer, words);
      expect(r.stderr, words.join(' ')).to.include('only admins may run this command');
    }
    // The reader of victim may read it whatever the order, and may not build it.
    for (const command of REPO_COMMANDS) {
      const r = await server.ssh(reader, command.args('victim'));
      const shown = command.args('victim').join(' ');
      if (command.needs === 'read') expect(r.exitCode, `${shown}: ${r.stderr}`).to.equal(0);
      else expect(r.stderr, shown).to.include('you may read repository victim but not write to it');
    }
    expect(await builds()).to.have.length(1);
  });

  it('a repo is named one way only: "mine.git.git" is no app of its own that the check on mine lets through', async () => {
    for (const words of [['build', 'mine.git.git'], ['builds', 'mine.git.git'], ['packages', 'mine.git.git'], ['log', 'mine.git.git']]) {
      const r = await server.ssh(writer, words);
      expect(r.exitCode, `${words.join(' ')}: ${r.stdout}${r.stderr}`).to.equal(1);
      expect(r.stderr).to.include('invalid app name');
    }
    const ssh = await server.ssh(writer, ["git-upload-pack '/mine.git.git'"]);
    expect(ssh.stderr).to.include('invalid app name');
    expect(JSON.parse((await server.ssh(admin, ['builds', 'mine', '--json'])).stdout)).to.deep.equal([]);
  });

  it('what a writer puts in a commit is stored cut to size: a 5 MiB message does not become 5 MiB in every listing', async () => {
    const dir = join(world.dir, 'clients', 'big-message');
    await execa('mkdir', ['-p', dir]);
    writeFileSync(join(dir, '.upaas.yml'), metadata({ interpreter: { type: 'static' } }));
    const env = server.clientEnv(writer);
    const run = (...args: string[]) => execa('git', args, { cwd: dir, env, reject: false, all: true });
    await run('init', '-q', '-b', 'main');
    await run('add', '-A');
    writeFileSync(join(world.dir, 'message.txt'), `${'s'.repeat(3 * 1024 * 1024)}\n\n${'b'.repeat(5 * 1024 * 1024)}\n`);
    await run('commit', '-q', '-F', join(world.dir, 'message.txt'));
    expect((await run('push', server.url('mine'), 'main')).exitCode).to.equal(0);
    const [pkg] = JSON.parse((await server.ssh(writer, ['packages', 'mine', '--json'])).stdout) as { description: string; changelog: { subject: string }[] }[];
    expect(pkg?.description.length).to.be.below(64 * 1024);
    expect(pkg?.changelog[0]?.subject.length).to.be.at.most(1000);
  });

  it('unknown options, options without a value, repeated options and extra arguments are usage errors', async () => {
    const cases = [
      ['builds', 'mine', '--evil'],
      ['build', 'mine', '--rev'],
      ['build', 'mine', '--rev', 'main', '--rev', 'other'],
      ['build', 'mine', '--fresh', '--fresh'],
      ['build', 'mine', 'victim'],
      ['builds', 'mine', 'extra'],
      ['log', 'mine', '1', '2'],
      ['packages'],
      ['repos', 'info', 'mine', '--json=yes'],
      ['keys', 'list', '--user'],
    ];
    for (const words of cases) {
      const r = await server.ssh(writer, words);
      expect(r.exitCode, `${words.join(' ')}: ${r.stderr}`).to.equal(64);
      expect(r.stderr, words.join(' ')).to.match(/usage: /);
    }
    expect((await server.ssh(writer, ['builds', 'mine', '--json'])).exitCode).to.equal(0);
  });

  it('gives one answer for "no such repo" and "no access", over SSH commands, git over SSH and git over HTTP, naming no server path', async () => {
    const answers: Record<string, string[]> = {};
    const seen = (what: string, text: string) => {
      expect(text, what).to.not.include(world.dir);
      (answers[what] ??= []).push(text.replaceAll('victim', 'REPO').replaceAll('ghost', 'REPO'));
    };
    for (const repo of ['victim', 'ghost']) {
      for (const command of REPO_COMMANDS) {
        const r = await server.ssh(writer, command.args(repo));
        seen(command.args('X').join(' '), `${r.exitCode} ${r.stdout} ${r.stderr}`);
      }
      for (const service of ['git-upload-pack', 'git-receive-pack', 'git-upload-archive']) {
        const r = await server.ssh(writer, [`${service} '/${repo}.git'`]);
        seen(service, `${r.exitCode} ${r.stdout} ${r.stderr}`);
      }
      const lsRemote = await execa('git', ['ls-remote', server.url(repo)], { env: server.clientEnv(writer), reject: false, all: true });
      seen('ls-remote', `${lsRemote.exitCode} ${lsRemote.all}`);
    }
    const token = (await server.ssh(admin, ['tokens', 'create', '--user', 'writer'])).stdout.trim().split('\n').pop() as string;
    for (const repo of ['victim', 'ghost']) {
      for (const path of [`/${repo}.git/info/refs?service=git-upload-pack`, `/${repo}.git/info/refs?service=git-receive-pack`, `/${repo}.git/git-upload-pack`, `/${repo}.git/git-receive-pack`]) {
        const response = await fetch(`http://127.0.0.1:${server.httpPort}${path}`, {
          method: path.includes('info/refs') ? 'GET' : 'POST',
          headers: { Authorization: `Basic ${Buffer.from(`writer:${token}`).toString('base64')}` },
          body: path.includes('info/refs') ? undefined : '0000',
        });
        seen(path.replace(repo, 'REPO'), `${response.status} ${await response.text()}`);
      }
    }
    for (const [what, both] of Object.entries(answers)) {
      expect(both, what).to.have.length(2);
      expect(both[0], what).to.equal(both[1]);
    }
    // Names that are not names say so before anything is looked up, and name no path either.
    const bad = await server.ssh(writer, ['builds', '../etc']);
    expect(bad.exitCode).to.equal(1);
    expect(bad.stderr).to.include('invalid app name').and.not.include(world.dir);
  });

  it('a failed build records its error without server paths, for its readers to see', async () => {
    const pushed = await push('mine', { '.upaas.yml': metadata({ interpreter: { type: 'static' }, files: { [`${'y'.repeat(300)}/x`]: 'hi' } }) }, writer);
    expect(String(pushed.all)).to.match(/user error: files.*a name in the path is too long/);
    const [record] = JSON.parse((await server.ssh(writer, ['builds', 'mine', '--json'])).stdout) as { errorKind: string; errorMessage: string }[];
    expect(record?.errorKind).to.equal('user');
    expect(record?.errorMessage).to.include('a name in the path is too long').and.not.include(world.dir);
    const info = await server.ssh(writer, ['repos', 'info', 'mine', '--json']);
    expect(info.stdout).to.not.include(world.dir);
  });

  it('a deleted repo leaves nothing to its successor: no grants, builds, logs, current package or package files', async () => {
    expect((await push('victim', SECRET_APP)).exitCode).to.equal(0);
    const before = JSON.parse((await server.ssh(admin, ['packages', 'victim', '--json'])).stdout) as { id: string }[];
    expect(before).to.have.length(1);
    expect(existsSync(join(world.storageDir, 'packages', 'victim', `${before[0]?.id}.tar.zst`))).to.equal(true);
    const deleted = await server.ssh(admin, ['repos', 'delete', 'victim', '--yes']);
    expect(deleted.exitCode, deleted.stderr).to.equal(0);
    expect(deleted.stdout).to.include('1 builds, 1 packages');
    expect((await server.ssh(admin, ['repos', 'create', 'victim'])).exitCode).to.equal(0);
    expect(JSON.parse((await server.ssh(admin, ['repos', 'info', 'victim', '--json'])).stdout)).to.include({ current: null, lastBuild: null });
    expect(JSON.parse((await server.ssh(admin, ['repos', 'info', 'victim', '--json'])).stdout).grants).to.deep.equal([]);
    expect((await server.ssh(reader, ['log', 'victim'])).stderr, 'the old grant is gone').to.include('does not exist or you have no access');
    expect((await server.ssh(admin, ['log', 'victim'])).stderr).to.include('victim has no builds');
    expect(JSON.parse((await server.ssh(admin, ['builds', 'victim', '--json'])).stdout)).to.deep.equal([]);
    expect(JSON.parse((await server.ssh(admin, ['packages', 'victim', '--json'])).stdout)).to.deep.equal([]);
    // (Fast worlds share one storage folder: other tests' packages of a "victim" may be there.)
    expect(existsSync(join(world.storageDir, 'packages', 'victim', `${before[0]?.id}.tar.zst`)), 'the package file').to.equal(false);
    expect(existsSync(join(world.dir, 'state', 'logs', 'victim')), 'log files').to.equal(false);
    // The successor's first build starts from the empty image, not from the old app's package.
    const next = await push('victim', { '.upaas.yml': metadata({ interpreter: { type: 'static' } }) });
    expect(next.exitCode, String(next.all)).to.equal(0);
    expect(String(next.all)).to.include('fresh package from the system image').and.not.include('s3cr3t');
    const [pkg] = JSON.parse((await server.ssh(admin, ['packages', 'victim', '--json'])).stdout) as { parent: string | null; fresh: boolean }[];
    expect(pkg).to.include({ parent: null, fresh: true });
  });

  it('git over HTTP refuses a repeated service or one the route did not check', async () => {
    const token = (await server.ssh(admin, ['tokens', 'create', '--user', 'reader'])).stdout.trim().split('\n').pop() as string;
    const auth = { Authorization: `Basic ${Buffer.from(`reader:${token}`).toString('base64')}` };
    const base = `http://127.0.0.1:${server.httpPort}/victim.git`;
    const ok = await fetch(`${base}/info/refs?service=git-upload-pack`, { headers: auth });
    expect(ok.status).to.equal(200);
    for (const query of ['service=git-upload-pack&service=git-receive-pack', 'service=git-receive-pack&service=git-upload-pack', 'service=git-upload-pack&service=git-upload-pack']) {
      const response = await fetch(`${base}/info/refs?${query}`, { headers: auth });
      expect(response.status, query).to.equal(404);
      expect(response.headers.get('content-type'), query).to.not.include('git-receive-pack');
    }
    const post = await fetch(`${base}/git-upload-pack?service=git-receive-pack`, { method: 'POST', headers: auth, body: '0000' });
    expect(post.status).to.equal(404);
  });

  it('keys add does not tell a user which other user owns a key', async () => {
    const r = await server.ssh(writer, ['keys', 'add'], reader.publicKey);
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.include('is in use').and.not.include('reader');
    const own = await server.ssh(writer, ['keys', 'add'], writer.publicKey);
    expect(own.stderr).to.include('writer has key');
  });

  it('commands read at most what they need from standard input', async () => {
    const big = `${attacker.publicKey} ${'x'.repeat(20 * 1024)}`;
    const r = await server.ssh(writer, ['keys', 'add'], big);
    expect(r.exitCode).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.include('standard input is larger than 16.0 KiB');
    const flood = await server.ssh(admin, ['users', 'add', 'flood'], Buffer.alloc(8 * 1024 * 1024, 'a'));
    expect(flood.exitCode).to.equal(1);
    expect(flood.stderr).to.include('standard input is larger than');
    expect((await server.ssh(admin, ['users', 'list', '--json'])).stdout).to.not.include('flood');
    expect((await server.ssh(writer, ['keys', 'add'], attacker.publicKey)).exitCode, 'a key of normal size').to.equal(0);
  });

  it('paths.repos and every repo in it are root-only, also those an older version left open', async () => {
    const mode = (path: string) => statSync(path).mode & 0o777;
    expect(mode(join(world.dir, 'repos'))).to.equal(0o700);
    expect(mode(join(world.dir, 'repos', 'mine.git'))).to.equal(0o700);
    await server.stop();
    chmodSync(join(world.dir, 'repos'), 0o755);
    chmodSync(join(world.dir, 'repos', 'victim.git'), 0o755);
    server = new TestServer(world);
    await server.start();
    expect(mode(join(world.dir, 'repos'))).to.equal(0o700);
    expect(mode(join(world.dir, 'repos', 'victim.git'))).to.equal(0o700);
  });

  it("day-two commands keep to the caller's access: readers see config var names but no values, cannot roll back", async () => {
    expect((await server.ssh(admin, ['config', 'set', 'victim', 'API_KEY=t0p-s3cret'])).exitCode).to.equal(0);
    const names = await server.ssh(reader, ['config', 'list', 'victim']);
    expect(names.exitCode, names.stderr).to.equal(0);
    expect(names.stdout.trim()).to.equal('API_KEY=********');
    const shown = await server.ssh(reader, ['config', 'list', 'victim', '--show']);
    expect(shown.exitCode).to.equal(1);
    expect(shown.stderr).to.include('you may read repository victim but not write to it');
    expect(shown.stdout + shown.stderr).to.not.include('t0p-s3cret');
    for (const args of [
      ['config', 'set', 'victim', 'X=1'],
      ['config', 'unset', 'victim', 'API_KEY'],
      ['rollback', 'victim', 'abcdef1'],
    ]) {
      const refused = await server.ssh(reader, args);
      expect(refused.exitCode, args.join(' ')).to.equal(1);
      expect(refused.stderr, args.join(' ')).to.include('you may read repository victim but not write to it');
    }
    // A writer of another repo learns nothing of this one.
    for (const args of [['config', 'list', 'victim'], ['releases', 'victim'], ['rollback', 'victim', 'abcdef1']]) {
      const refused = await server.ssh(writer, args);
      expect(refused.stderr, args.join(' ')).to.include('repository victim does not exist or you have no access to it');
    }
    const admins = await server.ssh(writer, ['packages', 'delete', 'mine', 'abcdef1']);
    expect(admins.stderr).to.include('packages delete: only admins may run this command');
    expect((await server.ssh(writer, ['doctor'])).stderr).to.include('doctor: only admins may run this command');
  });
});
