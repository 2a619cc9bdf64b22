/** Precedence rules and interpreter version selection (pure logic). */
import { expect } from 'chai';
import { parseConfig } from '../src/config/config.ts';
import { validate } from '../src/config/schema.ts';
import { metadataSchema } from '../src/metadata/metadata.ts';
import { appPackages, chooseInterpreter, makePlan, selectVersion, versionMatches } from '../src/builder/plan.ts';
import { BuildError } from '../src/builder/errors.ts';

const config = parseConfig(
  {
    interpreters: {
      env: { A: 'global', B: 'global', C: 'global' },
      packages: ['common'],
      actions: { setup: { system: 'sys', before: 'g-before', main: 'g-main', after: 'g-after', finalize: 'fin' } },
      python: {
        any: { packages: ['python3'], env: { B: 'any' }, actions: { setup: { interpreter: 'any-interp', main: 'any-main' } } },
        '3.9': { packages: ['python3.9'], env: { C: '3.9' }, actions: { setup: { main: '' } } },
        '3.11': { packages: ['python3.11', 'python3'], env: { C: '3.11' }, actions: { setup: { interpreter: 'v-interp', after: 'v-after' } } },
        '3.12': {},
      },
      static: { any: {} },
    },
  },
  null,
);

const meta = (value: unknown) => validate(metadataSchema, value, 'test');

describe('build plan', () => {
  it('matches versions by leading parts, numerically', () => {
    expect(versionMatches('3', '3.11')).to.equal(true);
    expect(versionMatches('3.1', '3.11')).to.equal(false);
    expect(versionMatches('3.11', '3.11')).to.equal(true);
    expect(versionMatches('3.11.2', '3.11')).to.equal(false);
    expect(selectVersion(['3.9', '3.11', '3.10'], ['3'])).to.equal('3.11');
    expect(selectVersion(['3.9', '3.11', '3.10'], ['3.9', '3.10'])).to.equal('3.10');
    expect(selectVersion(['3.9', '3.11'], [])).to.equal('3.11');
    expect(selectVersion(['3.9'], ['2'])).to.equal(null);
  });

  it('replaces actions (last non-empty wins), merges env by key, unions packages', () => {
    const metadata = meta({ interpreter: { type: 'python', versions: ['3.11'] }, env: { A: 'app' }, actions: { setup: { before: 'app-before' } } });
    const { interpreter } = chooseInterpreter(config, metadata, null);
    const plan = makePlan(config, metadata, interpreter);
    expect(plan.interpreter).to.deep.equal({ type: 'python', version: '3.11' });
    expect(plan.actions).to.deep.equal({
      system: ['sys'],
      interpreter: ['v-interp'],
      before: ['app-before'],
      main: ['any-main'],
      after: ['v-after'],
      finalize: ['fin'],
    });
    expect(plan.env).to.deep.equal({ A: 'app', B: 'any', C: '3.11' });
    expect(plan.adminEnv, 'admin-only actions do not see the app env').to.deep.equal({ A: 'global', B: 'any', C: '3.11' });
    expect(plan.interpreterPackages).to.deep.equal(['common', 'python3', 'python3.11']);
  });

  it('an empty action at a higher level does not erase a lower one', () => {
    const metadata = meta({ interpreter: { type: 'python', versions: ['3.9'] }, actions: { setup: { main: '' } } });
    const plan = makePlan(config, metadata, chooseInterpreter(config, metadata, null).interpreter);
    expect(plan.actions.main).to.deep.equal(['any-main']);
    expect(plan.actions.interpreter).to.deep.equal(['any-interp']);
  });

  it('builds fresh when the admin no longer offers the interpreter version of the current package', () => {
    const accepting = meta({ interpreter: { type: 'python', versions: ['3'] } });
    expect(chooseInterpreter(config, accepting, { type: 'python', version: '3.8' })).to.deep.equal({
      interpreter: { type: 'python', version: '3.12' },
      mustBeFresh: 'the interpreter changes from python 3.8 to python 3.12 (python 3.8 is no longer offered by this server)',
    });
    const anyOnly = meta({ interpreter: { type: 'static' } });
    expect(chooseInterpreter(config, anyOnly, { type: 'static', version: 'any' }).mustBeFresh).to.equal(null);
  });

  it('keeps the current interpreter while the metadata accepts it, else asks for a fresh build', () => {
    const accepting = meta({ interpreter: { type: 'python', versions: ['3'] } });
    expect(chooseInterpreter(config, accepting, { type: 'python', version: '3.9' })).to.deep.equal({
      interpreter: { type: 'python', version: '3.9' },
      mustBeFresh: null,
    });
    const narrowed = meta({ interpreter: { type: 'python', versions: ['3.12'] } });
    expect(chooseInterpreter(config, narrowed, { type: 'python', version: '3.9' }).mustBeFresh).to.equal(
      'the interpreter changes from python 3.9 to python 3.12',
    );
    const other = meta({ interpreter: { type: 'static' } });
    expect(chooseInterpreter(config, other, { type: 'python', version: '3.9' })).to.deep.equal({
      interpreter: { type: 'static', version: 'any' },
      mustBeFresh: 'the interpreter changes from python 3.9 to static any',
    });
  });

  it('refuses an interpreter type or version the admin does not offer, naming the key', () => {
    expect(() => chooseInterpreter(config, meta({ interpreter: { type: 'ruby' } }), null))
      .to.throw(BuildError, 'interpreter.type: "ruby" is not offered by this server (offered: python, static)');
    expect(() => chooseInterpreter(config, meta({ interpreter: { type: 'python', versions: ['2'] } }), null))
      .to.throw(BuildError, 'interpreter.versions: none of 2 is offered for python (offered: 3.9, 3.11, 3.12)');
  });

  it('picks OS packages for the image distribution and release', () => {
    const metadata = meta({
      interpreter: { type: 'static' },
      os: { debian: { packages: ['curl'], '12': { packages: ['libpq5'] }, bookworm: { packages: ['jq'] }, '11': { packages: ['old'] } }, ubuntu: { packages: ['xyz'] } },
    });
    expect(appPackages(metadata, { id: 'debian', versionId: '12', codename: 'bookworm' })).to.deep.equal(['curl', 'libpq5', 'jq']);
    expect(appPackages(metadata, { id: 'alpine', versionId: '3', codename: '' })).to.deep.equal([]);
  });
});
