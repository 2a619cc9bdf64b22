/**
 * Step 5 - Setup actions, in order: `before`, `main`, `after` (the app's, with
 * admin defaults; a failure is a user error), then apps.home is handed to
 * apps.uid:apps.gid, then the admin's `finalize` (a failure is a system error).
 * `files` are written before the actions.
 */
import { describeEnd } from '../../process/run.ts';
import { type BuildContext, actionEnv, inChroot, runCommands } from '../context.ts';
import { systemError } from '../errors.ts';
import { writeAppFiles } from './files.ts';

export async function runSetupActions(ctx: BuildContext): Promise<void> {
  await writeAppFiles(ctx);
  const env = actionEnv(ctx, 'app');
  const cwd = ctx.settings.home;
  for (const name of ['before', 'main', 'after'] as const) {
    const commands = ctx.plan.actions[name];
    if (commands.length === 0) continue;
    ctx.log.step(`Running ${name} action`);
    await runCommands(ctx, 'user', `${name} action`, commands, { env, cwd });
  }
  await handOver(ctx);
  if (ctx.plan.actions.finalize.length > 0) {
    ctx.log.step('Running finalize actions');
    await runCommands(ctx, 'system', 'finalize action', ctx.plan.actions.finalize, { env: actionEnv(ctx, 'admin'), cwd: '/' });
  }
}

/**
 * Gives apps.home to apps.uid:apps.gid, inside the chroot (names resolve
 * against the image's users): only what another owns, so an unchanged file
 * stays unchanged (in an overlay, any chown copies the file up into the
 * build's layer, and the whole home would be in each build's layer).
 */
async function handOver(ctx: BuildContext): Promise<void> {
  const { uid, gid, home } = ctx.settings;
  const argv = ['find', home, '(', '!', '-user', String(uid), '-o', '!', '-group', String(gid), ')', '-exec', 'chown', '-h', `${uid}:${gid}`, '{}', '+'];
  const result = await inChroot(ctx, argv, {
    timeoutSeconds: ctx.config.commands.timelimit,
    onLine: (line) => ctx.log.output(line),
  });
  if (!result.ok) {
    throw systemError(`cannot give ${home} to ${uid}:${gid} (apps.uid/apps.gid): chown ${describeEnd(result, ctx.config.commands.timelimit)}`);
  }
}
