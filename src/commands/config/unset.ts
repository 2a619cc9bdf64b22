/** `config unset APP KEY...`: removes config vars of APP; from the next build. */
import { unsetConfigVars } from '../../core/config-vars.ts';
import { defineCommand } from '../command.ts';

export const configUnsetCommand = defineCommand({
  name: 'config unset',
  summary: 'remove config vars of APP (from the next build)',
  positionals: [{ name: 'APP', repo: true }],
  rest: { name: 'KEY', min: 1 },
  options: {},
  access: 'repo:write',
  async run({ io, services, user }, { repo, rest }) {
    unsetConfigVars(services(), repo.name, rest, user.name);
    io.out(`unset ${rest.join(', ')} for ${repo.name}; the next build goes without them\n`);
    return 0;
  },
});
