/** Output to clients that read slowly or not at all: what the server holds for them is bounded. */
import { Writable } from 'node:stream';
import { expect } from 'chai';
import { BoundedOutput, MAX_HELD_BYTES } from '../src/process/bounded-output.ts';
import { send } from '../src/commands/output.ts';
import type { Io } from '../src/commands/command.ts';

/** A client that never reads: every write stays in the stream's buffer. */
const stalled = () =>
  new Writable({
    highWaterMark: 16 * 1024,
    write(_chunk, _encoding, _done) {
      // never done: the client does not read
    },
  });

describe('bounded output', () => {
  it('holds at most its bound for a client that does not read, even of one huge write, and says what it left out', () => {
    const stream = stalled();
    const out = new BoundedOutput(stream);
    out.write('x'.repeat(40 * 1024 * 1024));
    for (let i = 0; i < 1000; i++) out.write(`line ${i}\n`);
    expect(stream.writableLength).to.be.at.most(MAX_HELD_BYTES + 128 * 1024);
  });

  it('long command output goes out in chunks that wait for the client, whole lines, no character split', async () => {
    const chunks: string[] = [];
    let drains = 0;
    const io = { out: (text: string) => chunks.push(text), err: () => undefined, drain: async () => void (drains += 1), input: async () => '', binary: async () => undefined, binaryErr: async () => undefined } as Io;
    const text = `${'é'.repeat(70 * 1024)}\n${'line\n'.repeat(30_000)}${'😀'.repeat(40 * 1024)}`;
    await send(io, text);
    expect(chunks.join('')).to.equal(text);
    expect(drains).to.equal(chunks.length);
    expect(chunks.length).to.be.at.least(4);
    for (const chunk of chunks) expect(/[\uD800-\uDBFF]$/.test(chunk), 'no surrogate pair split').to.equal(false);
    expect(chunks.filter((c) => c.includes('line')).every((c) => c.endsWith('\n') || c === chunks.at(-1))).to.equal(true);
  });
});
