/** Admin commands run locally (`npx upaas ...` as the local admin). */
import { expect } from 'chai';
import { makeKey } from './helpers/server.ts';
import { World } from './helpers/world.ts';

const publicKey = async (name: string) => (await makeKey(name)).publicKey;

describe('admin commands (local)', function () {
  this.timeout(60_000);
  let world: World;
  beforeEach(() => {
    world = new World();
  });
  afterEach(() => world.remove());

  it('creates, lists, inspects, grants and deletes repositories', async () => {
    let r = await world.cli('repos', 'create', 'shop');
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.include('created repository shop');
    expect((await world.cli('repos', 'create', 'shop')).stderr).to.include('repository shop exists already');
    for (const bad of ['../etc', 'a/b', '-rf', 'x;rm', '/abs', 'UPPER']) {
      r = await world.cli('repos', 'create', bad);
      expect(r.exitCode, bad).to.not.equal(0);
      expect(r.stderr, bad).to.match(/invalid app name|Unknown option|unexpected argument/);
    }
    r = await world.cliWithInput(await publicKey('bob'), 'users', 'add', 'bob');
    expect(r.exitCode, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/added user bob with key SHA256:/);
    r = await world.cli('repos', 'grant', 'shop', 'bob', 'write');
    expect(r.stdout).to.equal('bob may now write shop');
    r = await world.cli('repos', 'grant', 'shop', 'bob', 'owner');
    expect(r.exitCode).to.equal(64);
    const info = JSON.parse((await world.cli('repos', 'info', 'shop', '--json')).stdout) as { grants: unknown; current: unknown };
    expect(info.grants).to.deep.equal([{ user: 'bob', level: 'write' }]);
    expect(info.current).to.equal(null);
    const list = JSON.parse((await world.cli('repos', 'list', '--json')).stdout) as { name: string }[];
    expect(list.map((x) => x.name)).to.deep.equal(['shop']);
    expect((await world.cli('repos', 'delete', 'shop')).exitCode, 'needs --yes').to.equal(64);
    r = await world.cli('repos', 'delete', 'shop', '--yes');
    expect(r.exitCode).to.equal(0);
    expect(JSON.parse((await world.cli('repos', 'list', '--json')).stdout)).to.deep.equal([]);
  });

  it('manages users, keys and tokens with clear refusals', async () => {
    let r = await world.cliWithInput(await publicKey('ann-desk'), 'users', 'add', 'ann', '--admin');
    expect(r.exitCode, r.stderr).to.equal(0);
    r = await world.cliWithInput('ssh-ed25519 AAAAnot-a-key', 'keys', 'add', '--user', 'ann');
    expect(r.exitCode).to.equal(1);
    expect(r.stderr).to.include('not an OpenSSH public key');
    r = await world.cliWithInput('-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----', 'keys', 'add', '--user', 'ann');
    expect(r.stderr).to.match(/expected one OpenSSH public key line|private key/);
    const second = await publicKey('ann-phone');
    r = await world.cliWithInput(second, 'keys', 'add', '--user', 'ann');
    expect(r.exitCode, r.stderr).to.equal(0);
    r = await world.cliWithInput(second, 'keys', 'add', '--user', 'ann');
    expect(r.stderr).to.match(/ann has key SHA256:\S+ already/);
    const keys = JSON.parse((await world.cli('keys', 'list', '--user', 'ann', '--json')).stdout) as { fingerprint: string; comment: string }[];
    expect(keys.map((k) => k.comment)).to.deep.equal(['ann-desk@test', 'ann-phone@test']);
    r = await world.cli('keys', 'remove', keys[1]!.fingerprint, '--user', 'ann');
    expect(r.exitCode).to.equal(0);
    r = await world.cli('tokens', 'create', '--user', 'ann', '--note', 'ci');
    expect(r.stdout).to.match(/\nupaas_[0-9a-f]{12}_\S+$/);
    const tokens = JSON.parse((await world.cli('tokens', 'list', '--user', 'ann', '--json')).stdout) as { id: string; note: string }[];
    expect(tokens).to.have.length(1);
    expect(tokens[0]?.note).to.equal('ci');
    expect((await world.cli('tokens', 'revoke', tokens[0]!.id, '--user', 'ann')).exitCode).to.equal(0);
    const users = JSON.parse((await world.cli('users', 'list', '--json')).stdout) as { name: string; admin: boolean; keys: number }[];
    expect(users).to.deep.include({ ...users[0], name: 'ann', admin: true, keys: 1 });
    expect((await world.cli('users', 'add', 'Bad Name')).stderr).to.include('invalid user name');
    expect((await world.cli('users', 'remove', 'ann')).exitCode).to.equal(0);
    expect((await world.cli('users', 'remove', 'ann')).stderr).to.include('no user named ann');
  });

  it('answers help, group names and unknown commands', async () => {
    const help = await world.cli('help');
    expect(help.stdout).to.include('repos grant REPO USER read|write');
    expect((await world.cli('repos')).stderr).to.include('expected one of');
    expect((await world.cli('frobnicate')).exitCode).to.equal(64);
    expect((await world.cli('packages', '--help')).stdout).to.include('usage: packages APP [--json]');
  });
});
