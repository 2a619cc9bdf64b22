/** The login throttle on its own, with a clock the test moves. */
import { expect } from 'chai';
import { LoginThrottle, MAX_QUEUE_MS, addressKey, delayFor } from '../src/core/login-throttle.ts';

describe('login throttle', () => {
  let now = 0;
  const lines: string[] = [];
  const throttle = () => new LoginThrottle((line) => lines.push(line), () => now);

  beforeEach(() => {
    now = 1_000_000;
    lines.length = 0;
  });

  it('lets three failures through, then waits 0.5 s doubling up to 30 s', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(delayFor)).to.deep.equal([0, 0, 0, 500, 1000, 2000, 4000, 30_000]);
  });

  it('answers failures of one address one after another: guessing on many connections at once is no faster', () => {
    const t = throttle();
    const waits = [1, 2, 3, 4, 5, 6].map(() => t.failed('192.0.2.9', 'wrong token'));
    // 0, 0, 0, then 0.5, 0.5+1, 0.5+1+2 s: each waits for the one before.
    expect(waits).to.deep.equal([0, 0, 0, 500, 1500, 3500]);
    expect(t.failed('192.0.2.10', 'wrong token'), 'another address').to.equal(0);
    expect(lines.at(-2)).to.include('failed login from 192.0.2.9: wrong token (6 in a row; answered after 3.5s)');
    for (let i = 0; i < 20; i++) t.failed('192.0.2.9', 'wrong token');
    expect(t.failed('192.0.2.9', 'wrong token')).to.be.above(MAX_QUEUE_MS);
  });

  it('forgets an address after a quiet spell', () => {
    const t = throttle();
    for (let i = 0; i < 5; i++) t.failed('192.0.2.9', 'x');
    expect(t.delay('192.0.2.9')).to.equal(1000);
    now += 16 * 60_000;
    expect(t.delay('192.0.2.9')).to.equal(0);
  });

  it('counts an IPv6 client by its /64 and an IPv4-mapped address as IPv4', () => {
    expect(addressKey('2001:db8:1:2:aaaa::1')).to.equal(addressKey('2001:db8:1:2:bbbb::2'));
    expect(addressKey('2001:db8:1:3::1')).to.not.equal(addressKey('2001:db8:1:2::1'));
    expect(addressKey('::ffff:192.0.2.1')).to.equal('192.0.2.1');
    const t = throttle();
    for (let i = 0; i < 4; i++) t.failed(`2001:db8:1:2::${i + 1}`, 'x');
    expect(t.delay('2001:db8:1:2::99')).to.equal(500);
  });
});
