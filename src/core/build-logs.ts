/**
 * A build's log, once for every front end (the `log` command, the API): the
 * stored text of a build that ended, or the log file a running build writes;
 * refused in the same words everywhere when there is none.
 */
import { type FileHandle, open } from 'node:fs/promises';
import { logFile } from '../builder/log.ts';
import type { BuildRecord } from '../state/builds.ts';
import { CoreError } from './errors.ts';
import type { Services } from './services.ts';

/** The log of an ended build (its text), or of a running one (its file, open: the caller closes it). */
export type BuildLogSource = { record: BuildRecord; text: string } | { record: BuildRecord; file: FileHandle };

/** The log of build `id` of `app` (default: its latest build); a 404 CoreError when there is none to show. */
export async function openBuildLog(services: Pick<Services, 'config' | 'state'>, app: string, id?: number): Promise<BuildLogSource> {
  const { config, state } = services;
  const record = id === undefined ? state.builds.latest(app) : state.builds.get(app, id);
  if (!record) throw new CoreError(id === undefined ? `${app} has no builds` : `${app} has no build ${id}`, 404);
  if (state.builds.logDeleted(record.id)) {
    throw new CoreError(`the log of build ${record.id} of ${app} was deleted: apps.builds_per_app keeps the logs of the newest builds`, 404);
  }
  const stored = state.builds.log(record.id);
  if (stored !== null) return { record, text: stored };
  const file = await open(logFile(config.paths.state, app, record.id), 'r').catch(() => null);
  if (file) return { record, file };
  // Ended between the two reads, or not writing yet.
  const ended = state.builds.log(record.id);
  if (ended !== null) return { record, text: ended };
  throw new CoreError(`build ${record.id} of ${app} has no log yet`, 404);
}
