/** `repos create`: create an empty repository to push an app into. */
import { createRepo, listRepos, repoNameFrom } from '../../git/repos.ts';
import { type Command, CommandError, parse } from '../command.ts';

export const reposCreateCommand: Command = {
  name: 'repos create',
  usage: 'repos create NAME',
  summary: 'create an empty repository to push an app into',
  access: 'admin',
  async run({ args, io, services }) {
    const { positionals } = parse(args, {}, { min: 1, max: 1 });
    const name = repoNameFrom(positionals[0] as string);
    const { config } = services();
    const existed = await listRepos(config.paths.repos).then((all) => all.includes(name));
    if (existed) throw new CommandError(`repository ${name} exists already`);
    await createRepo(config.paths.repos, name, config.apps.branch);
    io.out(`created repository ${name}; push to it with: git push <server>/${name}.git ${config.apps.branch}\n`);
    return 0;
  },
};
