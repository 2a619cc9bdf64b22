/** The server's own log: its stderr, one timestamped line each. What a client must not see (server paths, details) goes here. */
export function serverLog(line: string): void {
  process.stderr.write(`${new Date().toISOString()} upaas: ${line}\n`);
}
