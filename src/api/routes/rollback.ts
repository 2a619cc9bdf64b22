/**
 * POST /api/v1/apps/APP/rollback, body `{"package": "ID-or-prefix"}`: makes a
 * kept package current again as a new release, like the `rollback` command
 * (core rollBack: the app's deploy commands run; a failed deploy is a 409).
 * 200 with the release as `releases --json` shows it and the package's id.
 */
import { MIN_PREFIX, listReleases, rollBack } from '../../core/packages.ts';
import { endpoint } from '../route.ts';

export const rollBackApp = endpoint({
  access: 'write',
  body: {
    package: { type: 'string', required: true, pattern: new RegExp(`^[0-9a-f]{${MIN_PREFIX},64}$`), expected: `a package id or a unique prefix of at least ${MIN_PREFIX} hex characters` },
  },
  async run({ services, user, repo, body, response, stopping }) {
    // The deploy is the caller's, as over SSH: cancelled when the caller goes away (or the server's grace is over).
    const controller = new AbortController();
    response.once('close', () => controller.abort());
    const quiet = { step: () => undefined, output: () => undefined };
    const signal = AbortSignal.any([controller.signal, stopping]);
    const { release, package: pkg } = await rollBack(services, repo.name, body.package, user.name, quiet, signal);
    const shown = listReleases(services, repo.name).find((r) => r.version === release.version);
    return { status: 200, body: { release: shown, package: pkg.id } };
  },
});
