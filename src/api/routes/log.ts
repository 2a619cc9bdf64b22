/**
 * GET /api/v1/apps/APP/builds/N/log: a build's log as text, in the words of
 * the `log` command when there is none: the stored log of a build that
 * ended, or what the log file of a running build holds so far (its status in
 * X-Upaas-Build-Status: ask again for more). 404 when retention deleted it.
 */
import type { ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { openBuildLog } from '../../core/build-logs.ts';
import { buildNumber } from '../input.ts';
import { endpoint } from '../route.ts';

function textHead(response: ServerResponse, bytes: number, status: string): void {
  response.writeHead(200, {
    'Content-Type': 'text/plain; charset=utf-8',
    'Content-Length': String(bytes),
    'Cache-Control': 'no-store',
    'X-Upaas-Build-Status': status,
  });
}

export const buildLog = endpoint({
  access: 'read',
  async run({ services, repo, params, response }) {
    const { state } = services;
    const app = repo.name;
    const id = buildNumber(params.build ?? '');
    const source = await openBuildLog(services, app, id);
    if ('text' in source) {
      textHead(response, Buffer.byteLength(source.text), state.builds.get(app, id)?.status ?? source.record.status);
      response.end(source.text);
      return 'answered';
    }
    const { record, file } = source;
    try {
      // What the file holds now; it grows while the build runs.
      const { size } = await file.stat();
      textHead(response, size, record.status);
      if (size === 0) response.end();
      else await pipeline(file.createReadStream({ start: 0, end: size - 1, autoClose: false }), response);
    } finally {
      await file.close();
    }
    return 'answered';
  },
});
