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
  async run({ services, user, repo, body, stopping }) {
    // The deploy runs to its end even if the caller goes away (the host and the server must agree on
    // what is current); only the server's stop, past builder.grace, cancels it.
    const quiet = { step: () => undefined, output: () => undefined };
    const { release, package: pkg } = await rollBack(services, repo.name, body.package, user.name, quiet, stopping);
    const shown = listReleases(services, repo.name).find((r) => r.version === release.version);
    return { status: 200, body: { release: shown, package: pkg.id } };
  },
});
