/**
 * The one process runner: argument arrays only, output streamed line by line
 * to the caller, a time limit that kills the whole process tree, and a result
 * (never a throw) so the caller decides whether a failure is a user or a
 * system error. Output is never buffered whole: lines are split from the raw
 * bytes in bounded memory (a line is cut at 16 KiB, see lines.ts) and only the
 * last TAIL_LINES are kept; what the caller keeps of them is its business
 * (the build log keeps builder.logsize).
 */
import { execa } from 'execa';
import { killTree } from './kill.ts';
import { LineSplitter } from './lines.ts';

export interface RunOptions {
  /** Environment of the command; replaces the inherited one when `cleanEnv` is set. */
  env?: Record<string, string>;
  cleanEnv?: boolean;
  cwd?: string;
  /** Seconds before the command and all it started are killed. */
  timeoutSeconds?: number;
  /** Receives each line of stdout and stderr, in the order they arrive. */
  onLine?: (line: string) => void;
  /** Aborting kills the command like a timeout. */
  signal?: AbortSignal;
  /** Text written to the command's stdin. */
  input?: string;
}

export interface RunResult {
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  aborted: boolean;
  /** Why the command could not be started at all (E2BIG, ENOENT ...). */
  startError: string | undefined;
  ok: boolean;
  /** The last lines of output, for error details. */
  tail: string[];
}

const TAIL_LINES = 30;

/** PATH for programs the server runs as root on the host: the system's folders only, never a caller's. */
export const SYSTEM_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export async function run(file: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  // The last lines, in a ring: a flood calls this per line, so no shift().
  const ring: string[] = [];
  let next = 0;
  const onLine = (line: string) => {
    if (ring.length < TAIL_LINES) ring.push(line);
    else {
      ring[next] = line;
      next = (next + 1) % TAIL_LINES;
    }
    options.onLine?.(line);
  };
  const tail = () => [...ring.slice(next), ...ring.slice(0, next)];
  // Own line splitting on raw bytes: execa's would hold a newline-less flood in memory.
  const tap = () => {
    const lines = new LineSplitter(onLine);
    return {
      *transform(chunk: unknown) {
        lines.push(chunk as Uint8Array);
      },
      *final() {
        lines.flush();
      },
      binary: true,
    } as const;
  };
  const child = execa(file, args, {
    env: options.env ?? {},
    extendEnv: !options.cleanEnv,
    cwd: options.cwd,
    stdin: options.input === undefined ? 'ignore' : 'pipe',
    input: options.input,
    stdout: tap(),
    stderr: tap(),
    buffer: false,
    reject: false,
    detached: true,
    stripFinalNewline: true,
  });

  let timedOut = false;
  let aborted = false;
  const kill = () => {
    if (child.pid !== undefined) killTree(child.pid);
  };
  const timer =
    options.timeoutSeconds !== undefined
      ? setTimeout(() => {
          timedOut = true;
          kill();
        }, options.timeoutSeconds * 1000)
      : undefined;
  const onAbort = () => {
    aborted = true;
    kill();
  };
  if (options.signal?.aborted) onAbort();
  options.signal?.addEventListener('abort', onAbort, { once: true });

  try {
    const result = await child;
    return {
      exitCode: result.exitCode,
      signal: result.signal,
      timedOut,
      aborted,
      startError:
        result.exitCode === undefined && result.signal === undefined && !timedOut && !aborted
          ? (result.originalMessage ?? result.shortMessage)
          : undefined,
      ok: result.exitCode === 0 && !timedOut && !aborted,
      tail: tail(),
    };
  } finally {
    if (timer) clearTimeout(timer);
    options.signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Runs a command that must succeed and returns its stdout bytes. Used for
 * quick host queries (git on bare repos). With `maxBytes`, output past it is
 * not read: the command is stopped and what came up to there is returned.
 */
export async function captureBytes(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string>; maxBytes?: number } = {},
): Promise<Buffer> {
  // Bytes as they came: execa would strip a last newline of binary output too.
  const result = await execa(file, args, { cwd: options.cwd, env: options.env, reject: false, encoding: 'buffer', stripFinalNewline: false, maxBuffer: options.maxBytes });
  if (options.maxBytes !== undefined && result.isMaxBuffer) return Buffer.from(result.stdout).subarray(0, options.maxBytes);
  if (result.exitCode !== 0) {
    const detail = Buffer.from(result.stderr).toString('utf8').trim();
    throw new Error(`${[file, ...args].join(' ')} exited with ${result.exitCode ?? result.signal}${detail ? `: ${detail}` : ''}`);
  }
  return Buffer.from(result.stdout);
}

/** Like captureBytes, as text without its last line end. */
export async function capture(
  file: string,
  args: readonly string[],
  options: { cwd?: string; env?: Record<string, string> } = {},
): Promise<string> {
  return (await captureBytes(file, args, options)).toString('utf8').replace(/\r?\n$/, '');
}

/**
 * Runs a host command that must succeed (mkfs, mount, nft ...), keeping its
 * last lines; throws an Error that starts with `what` and says how it ended.
 */
export async function runChecked(
  what: string,
  file: string,
  args: readonly string[],
  options: { input?: string; timeoutSeconds?: number; cwd?: string; signal?: AbortSignal } = {},
): Promise<void> {
  const lines: string[] = [];
  const result = await run(file, args, {
    cwd: options.cwd,
    signal: options.signal,
    onLine: (line) => lines.push(line),
    timeoutSeconds: options.timeoutSeconds ?? 120,
    input: options.input,
    cleanEnv: true,
    env: { PATH: SYSTEM_PATH },
  });
  if (!result.ok) throw new Error(`${what}: ${file} ${describeEnd(result)}${lines.length > 0 ? `: ${lines.slice(-3).join(' ')}` : ''}`);
}

/** One-line description of how a command ended, for error messages. */
export function describeEnd(result: RunResult, timeoutSeconds?: number): string {
  if (result.timedOut) return `was killed after its time limit of ${timeoutSeconds}s`;
  if (result.aborted) return 'was cancelled';
  if (result.startError) return `could not be started (${result.startError})`;
  if (result.signal) return `was killed by ${result.signal}`;
  return `exited with status ${result.exitCode}`;
}
