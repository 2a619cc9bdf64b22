/**
 * `config list APP [--show] [--json]`: the app's config vars; values hidden
 * unless --show, which only the app's writers (who may set them) may ask for:
 * a reader learns the names, never the secrets.
 */
import { openRepo } from '../../core/access.ts';
import { listConfigVars } from '../../core/config-vars.ts';
import { defineCommand } from '../command.ts';
import { printJson } from '../output.ts';

const HIDDEN = '********';

export const configListCommand = defineCommand({
  name: 'config list',
  summary: "list APP's config vars (values hidden; --show for writers)",
  positionals: [{ name: 'APP', repo: true }],
  options: { show: { type: 'boolean' }, json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, services, user }, { values, repo }) {
    if (values.show) openRepo(services(), user, repo.name, 'write');
    const vars = listConfigVars(services(), repo.name);
    const shown = Object.fromEntries(Object.entries(vars).map(([name, value]) => [name, values.show ? value : HIDDEN]));
    if (values.json) {
      await printJson(io, shown);
      return 0;
    }
    if (Object.keys(shown).length === 0) io.out(`${repo.name} has no config vars\n`);
    for (const [name, value] of Object.entries(shown)) io.out(`${name}=${value}\n`);
    return 0;
  },
});
