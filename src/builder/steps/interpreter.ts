/**
 * Step 2 - Interpreter. First or fresh package only: the admin's packages for
 * the selected interpreter type and version, then its `interpreter` action.
 * Both are the platform's: a failure is a system error.
 */
import { type BuildContext, actionEnv, runCommands } from '../context.ts';
import { installPackages } from './os-packages.ts';

export async function installInterpreter(ctx: BuildContext): Promise<void> {
  const { interpreter, interpreterPackages, actions } = ctx.plan;
  ctx.log.step(`Installing interpreter ${interpreter.type} ${interpreter.version}`);
  await installPackages(ctx, 'system', interpreterPackages);
  await runCommands(ctx, 'system', 'interpreter action', actions.interpreter, { env: actionEnv(ctx, 'admin') });
}
