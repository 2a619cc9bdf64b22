/** Every admin command, in the order `help` lists them. */
import type { Command } from '../command.ts';
import { buildCommand } from './build.ts';
import { buildsCommand } from './builds.ts';
import { checkConfigCommand } from './check-config.ts';
import { exampleCommand } from './example.ts';
import { keysAddCommand, keysListCommand, keysRemoveCommand } from './keys.ts';
import { logCommand } from './log.ts';
import { packagesCommand } from './packages.ts';
import { serveCommand } from './serve.ts';
import {
  reposCreateCommand,
  reposDeleteCommand,
  reposGrantCommand,
  reposInfoCommand,
  reposListCommand,
  reposRevokeCommand,
} from './repos.ts';
import { tokensCreateCommand, tokensListCommand, tokensRevokeCommand } from './tokens.ts';
import { usersAddCommand, usersListCommand, usersRemoveCommand } from './users.ts';
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
  serveCommand,
  exampleCommand,
];
