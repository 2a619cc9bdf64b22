/** The admin config: defaults, validation messages, !include, anchors and merge keys. */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { appSettings, loadConfig, parseConfig } from '../src/config/config.ts';
import { ValidationError } from '../src/config/schema.ts';
import { YamlError } from '../src/config/yaml.ts';
import { World } from './helpers/world.ts';

function problems(raw: unknown): string[] {
  try {
    parseConfig(raw, '/srv/upaas.yml');
  } catch (error) {
    if (error instanceof ValidationError) return error.problems;
    throw error;
  }
  return [];
}

describe('admin config', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-config-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it('defaults to an isolated network and limits; refuses networks that are not networks', () => {
    const config = parseConfig({}, null);
    expect(config.builder).to.deep.include({ network: 'isolated', blocked: [], limits: { processes: 2048, memory: 4096, disk: 20480 } });
    expect(config.server).to.deep.include({ git_per_user: 8 });
    expect(config.server.ssh).to.deep.include({ login_grace: 30, max_sessions: 10 });
    expect(problems({ builder: { network: 'open' } })).to.deep.equal(['builder.network: expected one of "isolated", "none", "host", got "open"']);
    expect(problems({ builder: { blocked: ['10.0.0.0/8', '10.0.0.0/33', 'fd00::/8', '300.1.1.1', 'x'] } })).to.deep.equal([
      'builder.blocked[4]: expected an address or network like "10.0.0.0/8" or "fd00::/8", got "x"',
    ]);
    expect(() => parseConfig({ builder: { blocked: ['10.0.0.0/33', '300.1.1.1'] } }, null)).to.throw(ValidationError, /10\.0\.0\.0\/33[\s\S]*300\.1\.1\.1/);
  });

  it('apps.per_app overrides apps.* for one app, key by key, and names only apps the server can have', () => {
    const config = parseConfig({ apps: { packages_per_app: 4, per_app: { web: { packages_per_app: 9, reject_failed_builds: true } } } }, null);
    expect(appSettings(config, 'web')).to.include({ packages_per_app: 9, reject_failed_builds: true, builds_per_app: 50, branch: 'main' });
    expect(appSettings(config, 'api')).to.include({ packages_per_app: 4, reject_failed_builds: false });
    expect(appSettings(config, 'web')).to.not.have.property('per_app');
    for (const name of ['web.git', 'a..b', 'Web', '__proto__']) {
      expect(() => parseConfig({ apps: { per_app: { [name]: { builds_per_app: 2 } } } }, null), name).to.throw(ValidationError, `apps.per_app.${name}`);
    }
    expect(() => parseConfig({ apps: { per_app: { web: { per_app: {} } } } }, null)).to.throw(ValidationError, 'apps.per_app.web.per_app: unknown key');
  });

  it('fills every key with a default; an empty file works and offers python and static', () => {
    writeFileSync(join(dir, 'upaas.yml'), '');
    const config = loadConfig(join(dir, 'upaas.yml'));
    expect(config.paths).to.deep.equal({ repos: join(dir, 'repos'), workdir: join(dir, 'state/work'), state: join(dir, 'state') });
    expect(config.bootstrap.commands).to.deep.equal(['debootstrap --variant=minbase bookworm %workdir% http://deb.debian.org/debian']);
    expect(config.bootstrap).to.include({ maxage: 7, timelimit: 1800 });
    expect(config.bootstrap.packages).to.include('git');
    expect(config.commands.install.cmd).to.include('%package%');
    expect(config.apps).to.deep.equal({
      uid: 'www-data',
      gid: 'www-data',
      home: '/home/app',
      branch: 'main',
      metadata: '.upaas.yml',
      packages_per_app: 5,
      builds_per_app: 50,
      reject_failed_builds: false,
      deploy: { commands: [], timelimit: 600, network: 'host', env: {} },
      webhooks: [],
      per_app: {},
    });
    expect(config.builder).to.include({ timelimit: 3600, min_free: 2 });
    expect(Object.keys(config.interpreters.rest)).to.deep.equal(['python', 'static']);
    expect(config.interpreters.rest.python?.['3.11']).to.be.an('object');
    expect(config.builder.compression).to.equal('zstd');
  });

  it('apps.webhooks: only http and https URLs, secrets of 16 characters or more, known events; per app too', () => {
    const hook = { url: 'https://ci.example.com/upaas', secret: 'x'.repeat(16) };
    const ok = parseConfig({ apps: { webhooks: [hook], per_app: { web: { webhooks: [{ ...hook, events: ['release.created'] }] } } } }, null);
    expect(ok.apps.webhooks[0]?.events).to.have.length(5);
    expect(appSettings(ok, 'web').webhooks[0]?.events).to.deep.equal(['release.created']);
    const problems = (raw: unknown) => {
      try {
        parseConfig(raw, null);
      } catch (error) {
        return (error as ValidationError).problems;
      }
      return [];
    };
    expect(problems({ apps: { webhooks: [{ ...hook, url: 'file:///etc/passwd' }] } })).to.deep.equal([
      'apps.webhooks[0].url: expected an http:// or https:// URL, got "file:///etc/passwd"',
    ]);
    expect(problems({ apps: { webhooks: [{ ...hook, secret: 'short' }] } })).to.deep.equal(['apps.webhooks[0].secret: expected a secret of at least 16 characters, got "short"']);
    expect(problems({ apps: { per_app: { web: { webhooks: [{ ...hook, url: 'http://exa mple' }] } } } })[0]).to.match(/^apps\.per_app\.web\.webhooks\[0\]\.url: expected an http/);
    expect(problems({ apps: { webhooks: [{ ...hook, events: ['build.exploded'] }] } })[0]).to.match(/^apps\.webhooks\[0\]\.events\[0\]: expected one of/);
    expect(problems({ apps: { deploy: { network: 'lan' } } })[0]).to.match(/^apps\.deploy\.network: expected one of/);
  });

  it('the shipped upaas.yml is valid and offers python 3.11 and static', () => {
    const config = loadConfig(join(process.cwd(), 'upaas.yml'));
    expect(Object.keys(config.interpreters.rest)).to.include.members(['python', 'static']);
    expect(Object.keys(config.interpreters.rest.python ?? {})).to.include('3.11');
  });

  it('names the key path, what was expected and what was found, for every problem', () => {
    expect(
      problems({
        bootstrap: { maxage: 'soon', packages: ['git', 3, 'Bad Name'] },
        apps: { home: 'relative/path', uid: 'root user' },
        commands: { timelimit: 0 },
        interpreters: { python: { '3.11': { packages: 'python3' } } },
      }),
    ).to.deep.equal([
      'bootstrap.maxage: expected a whole number of at least 0, got "soon"',
      'bootstrap.packages[1]: expected a package name (like "libpq-dev" or "curl=7.88.1-10"), got 3',
      'bootstrap.packages[2]: expected a package name (like "libpq-dev" or "curl=7.88.1-10"), got "Bad Name"',
      'commands.timelimit: expected a whole number of at least 1, got 0',
      'apps.uid: expected a user name or numeric id, got "root user"',
      'apps.home: expected an absolute path like "/home/app", got "relative/path"',
      'interpreters.python["3.11"].packages: expected a list, each a package name (like "libpq-dev" or "curl=7.88.1-10"), got "python3"',
    ]);
  });

  it('refuses unknown keys instead of dropping them', () => {
    expect(problems({ bootstrap: { command: 'debootstrap' } })).to.deep.equal([
      'bootstrap.command: unknown key (known keys: commands, env, timelimit, maxage, packages)',
    ]);
    expect(problems({ interpreters: { python: { latest: {} } } })).to.deep.equal([
      'interpreters.python.latest: invalid key: expected "any" or a version like "3.11"',
    ]);
    expect(problems({ interpreters: { Python: {} } })[0]).to.match(/^interpreters\.Python: unknown key .*or an interpreter type name/);
    expect(problems({ builder: { compression: 'gzip', level: 15 } })).to.deep.equal(['builder.level: expected 1 to 9 for gzip, got 15']);
    // JSON.parse makes __proto__ an own key, as YAML does; assigning it would drop it silently.
    expect(problems(JSON.parse('{"interpreters": {"env": {"__proto__": "x"}}}'))).to.deep.equal(['interpreters.env.__proto__: invalid key: __proto__ is reserved']);
  });

  it('follows !include relative to the including file; anchors in x- keys and merge keys work', () => {
    writeFileSync(join(dir, 'python.yml'), 'any:\n  packages: [python3]\n"3.10": {}\n');
    writeFileSync(
      join(dir, 'upaas.yml'),
      [
        'x-limits: &limits {timelimit: 120}',
        'commands:',
        '  <<: *limits',
        '  install: {cmd: "apt-get install -y %package%"}',
        'interpreters:',
        '  python: !include python.yml',
      ].join('\n'),
    );
    const config = loadConfig(join(dir, 'upaas.yml'));
    expect(config.commands.timelimit).to.equal(120);
    expect(config.commands.install.cmd).to.equal('apt-get install -y %package%');
    expect(Object.keys(config.interpreters.rest.python ?? {}), '3.10 stays "3.10"').to.deep.equal(['any', '3.10']);
    writeFileSync(join(dir, 'upaas.yml'), 'limits: &limits {timelimit: 120}\n');
    expect(() => loadConfig(join(dir, 'upaas.yml'))).to.throw(ValidationError, 'limits: unknown key');
  });

  it('reports a missing include, an include cycle and bad YAML with the file', () => {
    writeFileSync(join(dir, 'upaas.yml'), 'interpreters: !include missing.yml\n');
    expect(() => loadConfig(join(dir, 'upaas.yml'))).to.throw(YamlError, /missing\.yml: file not found \(included from .*upaas\.yml\)/);
    writeFileSync(join(dir, 'upaas.yml'), 'paths: !include other.yml\n');
    writeFileSync(join(dir, 'other.yml'), 'repos: !include upaas.yml\n');
    expect(() => loadConfig(join(dir, 'upaas.yml'))).to.throw(YamlError, /!include cycle/);
    writeFileSync(join(dir, 'upaas.yml'), 'paths: [\n');
    expect(() => loadConfig(join(dir, 'upaas.yml'))).to.throw(YamlError, /upaas\.yml: invalid YAML/);
  });

  it('check-config prints the effective config, or the errors with exit 78', async () => {
    const world = new World();
    try {
      let result = await world.cli('check-config');
      expect(result.exitCode, result.stderr).to.equal(0);
      expect(result.stdout).to.match(/is valid; effective config:/);
      expect(result.stdout).to.include('home: /home/app');
      writeFileSync(world.configFile, 'apps:\n  branch: -evil\n  colour: blue\n');
      result = await world.cli('check-config');
      expect(result.exitCode).to.equal(78);
      expect(result.stderr).to.include('apps.branch: expected a branch name like "main", got "-evil"');
      expect(result.stderr).to.include('apps.colour: unknown key');
    } finally {
      world.remove();
    }
  });
});
