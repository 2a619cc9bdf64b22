/** `repos info`: branches, current package and grants of a repository. */
import { describeRepository } from '../../core/repos.ts';
import { defineCommand } from '../command.ts';
import { printJson } from '../output.ts';

export const reposInfoCommand = defineCommand({
  name: 'repos info',
  summary: 'branches, current package and grants of a repository',
  positionals: [{ name: 'NAME', repo: true }],
  options: { json: { type: 'boolean' } },
  access: 'repo:read',
  async run({ io, user, services }, { values, repo }) {
    const info = await describeRepository(services(), user, repo);
    if (values.json) {
      await printJson(io, info);
      return 0;
    }
    io.out(`repository ${info.name} (deploys ${info.deployBranch})\n`);
    for (const b of info.branches) io.out(`  branch ${b.name}  ${b.revision.slice(0, 12)}\n`);
    io.out(`  current package: ${info.current ? `${info.current.id.slice(0, 12)} at ${info.current.revision.slice(0, 12)}` : 'none'}\n`);
    if (info.lastBuild) io.out(`  last build: #${info.lastBuild.id} ${info.lastBuild.status}\n`);
    for (const g of info.grants ?? []) io.out(`  ${g.user}: ${g.level}\n`);
    return 0;
  },
});
