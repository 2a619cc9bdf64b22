/**
 * OS packages of a build (the interpreter's, the app's, the image's
 * bootstrap.packages): the ones commands.install.check finds missing are
 * installed one by one with commands.install.cmd, after commands.install.refresh
 * (the package lists) has run once in that tree. A build whose packages are
 * all there runs neither, so it does not touch the network.
 */
import { type BuildContext, inChroot, runCommands } from '../context.ts';

/**
 * The trees whose package lists this build refreshed, shared by the build's
 * contexts (the image's tree is one of its own until it becomes the root).
 */
export type Refreshed = Set<string>;

/** `%package%` becomes a quoted variable reference: no (validated) name is pasted into the admin's script. */
const withName = (script: string) => script.replaceAll('%package%', '"$UPAAS_PACKAGE"');

/**
 * Installs those of `names` that are missing in ctx.root. `kind` is whose
 * failure a failed install is (the metadata's names: the user's).
 */
export async function installPackages(ctx: BuildContext, kind: 'user' | 'system', names: readonly string[]): Promise<void> {
  if (names.length === 0) return;
  const missing = await missingPackages(ctx, names);
  const present = names.filter((name) => !missing.includes(name));
  if (present.length > 0) ctx.log.output(`installed already: ${present.join(' ')}`);
  if (missing.length === 0) return;
  const { install } = ctx.config.commands;
  const env = { LANG: 'C.UTF-8', HOME: '/root', ...install.env };
  if (install.refresh.length > 0 && !ctx.refreshed.has(ctx.root)) {
    await runCommands(ctx, 'system', 'refreshing the package lists (commands.install.refresh)', install.refresh, { env });
    ctx.refreshed.add(ctx.root);
  }
  for (const name of missing) {
    const what = kind === 'user' ? `installing OS package ${name} (from the app metadata)` : `installing package ${name}`;
    await runCommands(ctx, kind, what, [withName(install.cmd)], {
      env: { ...env, UPAAS_PACKAGE: name },
      shown: [install.cmd.replaceAll('%package%', name)],
    });
  }
}

/**
 * The names commands.install.check does not find installed, asked in one
 * chroot for all of them (all, when there is no check). A check that cannot
 * run counts as "missing": the install then says what is wrong.
 */
async function missingPackages(ctx: BuildContext, names: readonly string[]): Promise<string[]> {
  const { check, env } = ctx.config.commands.install;
  if (check === '') return [...names];
  const script = `for UPAAS_PACKAGE in "$@"; do export UPAAS_PACKAGE; (${withName(check)}\n) >/dev/null 2>&1 </dev/null || printf '%s\\n' "$UPAAS_PACKAGE"; done`;
  const lines: string[] = [];
  const started = performance.now();
  const result = await inChroot(ctx, ['/bin/sh', '-c', script, 'sh', ...names], {
    env: { LANG: 'C.UTF-8', HOME: '/root', ...env },
    timeoutSeconds: ctx.config.commands.timelimit,
    onLine: (line) => lines.push(line),
  });
  ctx.stats.commandMs += performance.now() - started;
  if (!result.ok) return [...names];
  return names.filter((name) => lines.includes(name));
}
