/** Every admin command, in the order `help` lists them. */
import type { Command } from '../command.ts';
import { buildCommand } from './build.ts';
import { buildsCommand } from './builds.ts';
import { checkConfigCommand } from './check-config.ts';
import { exampleCommand } from './example.ts';
import { logCommand } from './log.ts';
import { packagesCommand } from './packages.ts';

export const COMMANDS: Command[] = [buildCommand, buildsCommand, logCommand, packagesCommand, checkConfigCommand, exampleCommand];
