/** `config set APP KEY=VALUE... [--build]`: sets config vars of APP's actions; they apply from the next build. */
import { parseAssignments, setConfigVars } from '../../core/config-vars.ts';
import { buildForCaller } from '../build.ts';
import { defineCommand } from '../command.ts';

export const configSetCommand = defineCommand({
  name: 'config set',
  summary: "set config vars of APP's actions (from the next build; --build starts one)",
  positionals: [{ name: 'APP', repo: true }],
  rest: { name: 'KEY=VALUE', min: 1 },
  options: { build: { type: 'boolean' } },
  access: 'repo:write',
  async run(invocation, { values, repo, rest }) {
    const vars = parseAssignments(rest);
    setConfigVars(invocation.services(), repo.name, vars, invocation.user.name);
    const names = Object.keys(vars).join(', ');
    if (!values.build) {
      invocation.io.out(`set ${names} for ${repo.name}; the next build uses them (config set --build starts one)\n`);
      return 0;
    }
    invocation.io.out(`set ${names} for ${repo.name}; building\n`);
    return buildForCaller(invocation, { app: repo.name, fresh: false, requestedBy: invocation.user.name });
  },
});
