/** Every admin command (SSH and local alike), in the order `help` lists them; cli/ adds its local-only ones. */
import type { Command } from './command.ts';
import { buildCommand } from './build.ts';
import { buildsCommand } from './builds.ts';
import { checkConfigCommand } from './check-config.ts';
import { doctorCommand } from './doctor.ts';
import { keysAddCommand } from './keys/add.ts';
import { keysListCommand } from './keys/list.ts';
import { keysRemoveCommand } from './keys/remove.ts';
import { logCommand } from './log.ts';
import { packagesCommand } from './packages/list.ts';
import { packagesDeleteCommand } from './packages/delete.ts';
import { packagesDownloadCommand } from './packages/download.ts';
import { releasesCommand } from './releases.ts';
import { rollbackCommand } from './rollback.ts';
import { runCommand } from './run.ts';
import { configListCommand } from './config/list.ts';
import { configSetCommand } from './config/set.ts';
import { configUnsetCommand } from './config/unset.ts';
import { webhooksDeliveriesCommand } from './webhooks/deliveries.ts';
import { reposCreateCommand } from './repos/create.ts';
import { reposDeleteCommand } from './repos/delete.ts';
import { reposGrantCommand } from './repos/grant.ts';
import { reposInfoCommand } from './repos/info.ts';
import { reposListCommand } from './repos/list.ts';
import { reposRevokeCommand } from './repos/revoke.ts';
import { tokensCreateCommand } from './tokens/create.ts';
import { tokensListCommand } from './tokens/list.ts';
import { tokensRevokeCommand } from './tokens/revoke.ts';
import { usersAddCommand } from './users/add.ts';
import { usersListCommand } from './users/list.ts';
import { usersRemoveCommand } from './users/remove.ts';
import { whoamiCommand } from './whoami.ts';

export const COMMANDS: Command[] = [
  whoamiCommand,
  reposListCommand,
  reposCreateCommand,
  reposDeleteCommand,
  reposInfoCommand,
  reposGrantCommand,
  reposRevokeCommand,
  buildCommand,
  buildsCommand,
  logCommand,
  packagesCommand,
  packagesDeleteCommand,
  packagesDownloadCommand,
  releasesCommand,
  rollbackCommand,
  runCommand,
  configListCommand,
  configSetCommand,
  configUnsetCommand,
  webhooksDeliveriesCommand,
  usersListCommand,
  usersAddCommand,
  usersRemoveCommand,
  keysListCommand,
  keysAddCommand,
  keysRemoveCommand,
  tokensCreateCommand,
  tokensListCommand,
  tokensRevokeCommand,
  checkConfigCommand,
  doctorCommand,
];
