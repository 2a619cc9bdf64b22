/**
 * Step 4 - Cloning the app. Runs inside the chroot, with the pushed bare repo
 * bound read-only under /run/upaas: a first or fresh package clones it into
 * apps.home, any other build updates the existing checkout to the revision.
 * No git command runs on the host over the checkout, whose .git/config the
 * app's own actions may have written.
 *
 * A repo may borrow object folders (git alternates) written as `../../NAME`:
 * NAME lies beside the repo on the host, and is bound beside it here, so the
 * one alternates file resolves in both places. A pre-receive build's repo
 * borrows the app's objects and the push's quarantined ones that way.
 */
import { borrowedFolders } from '../../git/source-repo.ts';
import { BIND_ROOT } from '../../sandbox/sandbox.ts';
import { type BuildContext, runCommands } from '../context.ts';

const REPO_IN_CHROOT = `${BIND_ROOT}/repo.git`;

/** Binds of the object folders `repo` borrows beside itself (git/source-repo.ts), beside it in the chroot too. */
async function borrowedBinds(repo: string): Promise<{ source: string; target: string }[]> {
  return (await borrowedFolders(repo)).map(({ name, path }) => ({ source: path, target: `${BIND_ROOT}/${name}` }));
}

export async function checkoutApp(ctx: BuildContext): Promise<void> {
  const { home, branch } = ctx.settings;
  const cloning = ctx.fresh || !ctx.current;
  ctx.log.step(`${cloning ? 'Cloning' : 'Updating'} app at ${ctx.revision.slice(0, 12)} into ${home}`);
  const env = {
    LANG: 'C.UTF-8',
    ...ctx.plan.repository.env,
    HOME: cloning ? '/root' : home,
    UPAAS_REPOSITORY: `file://${REPO_IN_CHROOT}`,
    UPAAS_APP_HOME: home,
    UPAAS_REVISION: ctx.revision,
    UPAAS_BRANCH: branch,
    // The checkout may belong to apps.uid while git runs as root.
    GIT_CONFIG_COUNT: '1',
    GIT_CONFIG_KEY_0: 'safe.directory',
    GIT_CONFIG_VALUE_0: '*',
  };
  const commands = cloning ? ctx.plan.repository.clone : ctx.plan.repository.update;
  await runCommands(ctx, 'user', cloning ? 'cloning the app' : 'updating the app', commands, {
    env,
    cwd: cloning ? '/' : home,
    bindsReadOnly: [{ source: ctx.repo, target: REPO_IN_CHROOT }, ...(await borrowedBinds(ctx.repo))],
  });
}
