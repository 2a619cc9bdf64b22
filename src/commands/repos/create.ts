/** `repos create`: create an empty repository to push an app into. */
import { appSettings } from '../../config/config.ts';
import { createRepository } from '../../core/repos.ts';
import { defineCommand } from '../command.ts';

export const reposCreateCommand = defineCommand({
  name: 'repos create',
  summary: 'create an empty repository to push an app into',
  positionals: [{ name: 'NAME', repo: true }],
  options: {},
  access: 'admin',
  async run({ io, services }, { args }) {
    const all = services();
    const repo = await createRepository(all, args.NAME);
    io.out(`created repository ${repo.name}; push to it with: git push <server>/${repo.name}.git ${appSettings(all.config, repo.name).branch}\n`);
    return 0;
  },
});
