/**
 * `run APP [--package ID] -- COMMAND...`: a one-off command in a throw-away
 * copy of one of APP's packages (core/run.ts), e.g.
 * `ssh -p 2222 git@HOST run myapp -- sh -c "'./manage.py check'"`. Its
 * standard output and error reach the caller, its exit status is the
 * command's; standard input is /dev/null (see below).
 */
import { constants } from 'node:os';
import { type RunOutcome, RunError, runInPackage } from '../core/run.ts';
import { serverLog } from '../process/server-log.ts';
import { defineCommand } from './command.ts';

/** As GNU timeout(1) reports a command it stopped. */
const TIMED_OUT = 124;
/** As a shell reports a command ended by Ctrl-C (the caller is gone or interrupted it). */
const CANCELLED = 128 + constants.signals.SIGINT;

export const runCommand = defineCommand({
  name: 'run',
  // Standard input is /dev/null: the one process runner takes input only as a
  // whole text up front, and waiting for the end of the caller's input would
  // hang every `ssh ... run` typed at a terminal until Ctrl-D.
  summary: "a throw-away command in APP's current package (or --package ID, given before --): its words as they are, no shell; stdin is /dev/null",
  positionals: [{ name: 'APP', repo: true }],
  // util.parseArgs takes every word after `--` as it is, options included: they are the command's, never run's.
  rest: { name: '-- COMMAND', min: 1 },
  options: { package: { type: 'string', value: 'ID' } },
  access: 'repo:write',
  async run({ io, services }, { values, repo, rest }) {
    let outcome: RunOutcome;
    try {
      outcome = await runInPackage(services(), {
        app: repo.name,
        package: values.package,
        argv: rest,
        // Raw bytes, not io.out's text: binary output (`run APP -- tar -c ...`) arrives
        // unchanged, nothing is cut or left out, and a slow caller slows the command
        // down instead of filling the server's memory.
        stdout: (data) => io.binary(data),
        stderr: (data) => io.binaryErr(data),
        sandboxLine: (line) => io.err(`${line}\n`),
        signal: io.signal,
      });
    } catch (error) {
      if (!(error instanceof RunError)) throw error;
      serverLog(`run in ${repo.name}: ${(error.cause as Error | undefined)?.message ?? error.message}`);
      io.err(`upaas run: system error: ${error.message}\n`);
      return 2;
    }
    return exitCode(outcome, (line) => io.err(`upaas run: ${line}\n`));
  },
});

/** The command's exit status, or the shell's 128+N for a signal; a line for `tell` where the command did not end by itself. */
function exitCode(outcome: RunOutcome, tell: (line: string) => void): number {
  if (outcome.limit) tell(outcome.limit);
  if (outcome.timedOut !== null) {
    tell(`the command was stopped: it ran longer than commands.timelimit (${outcome.timedOut} s)`);
    return TIMED_OUT;
  }
  if (outcome.cancelled) return CANCELLED;
  if (outcome.signal !== null) {
    tell(`the command was killed by ${outcome.signal}`);
    return 128 + (constants.signals[outcome.signal as keyof typeof constants.signals] ?? 0);
  }
  return outcome.exitCode ?? 1;
}
