/** Standard input for a command: read up to a limit and no further, so no caller can make the server hold more. */
import type { Readable } from 'node:stream';
import { formatBytes } from '../builder/log.ts';
import { CommandError } from './command.ts';

/** The text of `stream` up to its end; a CommandError (and no further reading) once it passes `limit` bytes. */
export function readLimited(stream: Readable, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let bytes = 0;
    const done = () => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.off('close', onClose);
    };
    const onData = (chunk: Buffer | string) => {
      const data = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      bytes += data.length;
      if (bytes > limit) {
        done();
        stream.pause();
        reject(new CommandError(`standard input is larger than ${formatBytes(limit)}, more than this command takes`));
        return;
      }
      chunks.push(data);
    };
    const onEnd = () => {
      done();
      resolve(Buffer.concat(chunks).toString('utf8'));
    };
    const onError = (error: Error) => {
      done();
      reject(error);
    };
    // A caller that leaves without ending its input (an SSH channel closed mid-way).
    const onClose = () => {
      done();
      reject(new CommandError('standard input was closed before its end'));
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.on('close', onClose);
  });
}
