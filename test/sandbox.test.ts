/** The chroot sandbox: namespaces, time limits, binds, and nothing left behind. */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'chai';
import { execa } from 'execa';
import { KEPT_CAPABILITIES, runInSandbox, runScriptInSandbox } from '../src/sandbox/sandbox.ts';
import { FIXTURE_BOOTSTRAP, PROJECT } from './helpers/world.ts';

describe('sandbox', function () {
  this.timeout(60_000);
  let dir: string;
  let root: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'upaas-sandbox-'));
    root = join(dir, 'root');
    await execa('sh', [FIXTURE_BOOTSTRAP, root]);
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const mountsUnder = (path: string) =>
    readFileSync('/proc/self/mounts', 'utf8').split('\n').filter((line) => line.split(' ')[1]?.startsWith(path));

  it('runs as PID 1 of its own namespace with /proc, /dev, /run and a clean environment', async () => {
    const lines: string[] = [];
    const result = await runScriptInSandbox(root, 'echo "pid=$$"; test -c /dev/null && echo dev-ok; test -r /proc/self/status && echo proc-ok; env | sort; pwd', {
      env: { FOO: 'bar' },
      cwd: '/tmp',
      onLine: (line) => lines.push(line),
    });
    expect(result.ok).to.equal(true);
    expect(lines).to.include.members(['pid=1', 'dev-ok', 'proc-ok', 'FOO=bar', '/tmp']);
    expect(lines.filter((l) => /^[A-Z_]+=/.test(l)).map((l) => l.split('=')[0])).to.have.members(['FOO', 'PATH', 'PWD']);
    expect(mountsUnder(root)).to.deep.equal([]);
  });

  it('kills the command and every process it started at the time limit', async () => {
    const marker = `upaas-sandbox-sleeper-${process.pid}`;
    const started = Date.now();
    const result = await runScriptInSandbox(root, `(exec -a ${marker} sleep 300) & (setsid sh -c "exec -a ${marker} sleep 300" &); trap "" TERM; sleep 300`, {
      timeoutSeconds: 1,
    });
    expect(result.timedOut).to.equal(true);
    expect(result.ok).to.equal(false);
    expect(Date.now() - started).to.be.below(10_000);
    const survivors = await execa('pgrep', ['-f', marker], { reject: false });
    expect(String(survivors.stdout)).to.equal('');
    expect(mountsUnder(root)).to.deep.equal([]);
  });

  it('kills on abort like on a time limit', async () => {
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 300);
    const result = await runInSandbox(root, ['sleep', '300'], { signal: controller.signal });
    expect(result).to.include({ aborted: true, ok: false });
  });

  it('binds a host folder read-only under /run/upaas, and leaves no mount point in the image', async () => {
    const lines: string[] = [];
    const result = await runScriptInSandbox(root, 'ls /run/upaas/data; touch /run/upaas/data/x 2>&1 || echo read-only', {
      bindsReadOnly: [{ source: join(root, 'etc'), target: '/run/upaas/data' }],
      onLine: (line) => lines.push(line),
    });
    expect(result.ok).to.equal(true);
    expect(lines).to.include('passwd');
    expect(lines).to.include('read-only');
    expect(existsSync(join(root, 'run/upaas'))).to.equal(false);
    // A target that would leave /run/upaas (and so the image) is refused before anything runs.
    for (const target of ['/run/upaas/../../etc', '/run/upaas//data', '/run/upaas/./data', '/run/other']) {
      expect(() => runInSandbox(root, ['/bin/true'], { bindsReadOnly: [{ source: join(root, 'etc'), target }] }), target).to.throw(/must be a plain path under \/run\/upaas/);
    }
  });

  it('refuses to mount over a symlink the image put in place of /proc', async () => {
    const evil = join(dir, 'evil');
    await execa('cp', ['-a', root, evil]);
    rmSync(join(evil, 'proc'), { recursive: true });
    symlinkSync('/etc', join(evil, 'proc'));
    const lines: string[] = [];
    const result = await runInSandbox(evil, ['/bin/true'], { onLine: (line) => lines.push(line) });
    expect(result.ok).to.equal(false);
    expect(lines.join('\n')).to.include('/proc in the image is a symlink');
    expect(mountsUnder('/etc')).to.deep.equal([]);
  });

  it('keeps root inside the image: no remount of a bind, no mounts, no device nodes, no chroot, no kernel knobs', async () => {
    const data = join(dir, 'data');
    mkdirSync(data, { recursive: true });
    const mask = Object.values(KEPT_CAPABILITIES).reduce((sum, cap) => sum + 2 ** cap, 0);
    const attempts = [
      'grep CapBnd /proc/self/status',
      'grep CapEff /proc/self/status',
      'mount -o remount,bind,rw /run/upaas/data 2>/dev/null && touch /run/upaas/data/planted 2>/dev/null && echo remounted',
      'umount /run/upaas/data 2>/dev/null && echo unmounted',
      'mount -t tmpfs escape /tmp 2>/dev/null && echo mounted',
      'umount /proc/sys 2>/dev/null && echo unmounted-sys',
      'cat /proc/sys/kernel/hostname 2>/dev/null >/proc/sys/kernel/hostname && echo sysctl-written',
      '[ ! -e /proc/sysrq-trigger ] || { echo h 2>/dev/null >/proc/sysrq-trigger && echo sysrq-written; }',
      'mknod /tmp/disk b 8 0 2>/dev/null && echo mknod',
      'mkdir -p /tmp/jail && chroot /tmp/jail /bin/true 2>/dev/null; [ $? = 125 ] || echo chrooted',
      'chown 1234:1234 /tmp/jail && echo chown-ok',
      'echo done',
    ];
    const lines: string[] = [];
    const result = await runScriptInSandbox(root, attempts.join('\n'), {
      bindsReadOnly: [{ source: data, target: '/run/upaas/data' }],
      onLine: (line) => lines.push(line),
    });
    expect(result.ok, lines.join('\n')).to.equal(true);
    const hex = mask.toString(16).padStart(16, '0');
    expect(lines).to.deep.equal([`CapBnd:\t${hex}`, `CapEff:\t${hex}`, 'chown-ok', 'done']);
    expect(existsSync(join(data, 'planted'))).to.equal(false);
    expect(mountsUnder(root)).to.deep.equal([]);
  });

  it("gives the command's environment to the command only, never to the host programs that set up the sandbox", async () => {
    const trap = join(dir, 'trap');
    mkdirSync(trap, { recursive: true });
    const marker = join(dir, 'host-was-steered');
    for (const tool of ['perl', 'mount', 'unshare', 'mkdir', 'ln', 'sh']) {
      writeFileSync(join(trap, tool), `#!/bin/sh\necho "$0" >> ${marker}\nexit 1\n`, { mode: 0o755 });
    }
    const lines: string[] = [];
    const result = await runInSandbox(root, ['/bin/sh', '-c', 'echo "path=$PATH"; echo "preload=$LD_PRELOAD"'], {
      env: { PATH: `${trap}:/usr/bin:/bin`, LD_PRELOAD: '/nonexistent/evil.so' },
      onLine: (line) => lines.push(line),
    });
    expect(existsSync(marker), 'a host program ran from the app-chosen PATH').to.equal(false);
    expect(result.ok, lines.join('\n')).to.equal(true);
    expect(lines).to.include(`path=${trap}:/usr/bin:/bin`).and.include('preload=/nonexistent/evil.so');
  });

  it("keeps the command's environment values out of every process's arguments (any host user reads /proc/PID/cmdline)", async () => {
    const secret = `s3cret-${process.pid}-value`;
    const running = runInSandbox(root, ['/bin/sh', '-c', 'sleep 1; test "$TOKEN" = "$EXPECTED" && echo same'], {
      env: { TOKEN: `${secret} with "quotes", $dollars and\na line break`, EXPECTED: `${secret} with "quotes", $dollars and\na line break` },
      onLine: (line) => seen.push(line),
    });
    const seen: string[] = [];
    await new Promise((r) => setTimeout(r, 500));
    const found = readdirSync('/proc')
      .filter((pid) => /^[0-9]+$/.test(pid))
      .filter((pid) => {
        try {
          return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(secret);
        } catch {
          return false;
        }
      })
      .join(' ');
    const result = await running;
    expect(found, 'processes whose arguments hold the value').to.equal('');
    expect(result.ok).to.equal(true);
    expect(seen).to.deep.equal(['same']);
  });

  it('dies with the server: killing the process that started a command (even with SIGKILL) kills the command', async () => {
    const marker = `upaas-orphan-check-${process.pid}`;
    const script = `import { runInSandbox } from ${JSON.stringify(join(PROJECT, 'src/sandbox/sandbox.ts'))};
      await runInSandbox(${JSON.stringify(root)}, ['sh', '-c', 'exec -a ${marker} sleep 300'], {});`;
    const server = execa('node', ['--import', 'tsx', '--input-type=module', '-e', script], { cwd: PROJECT, reject: false });
    const started = Date.now();
    while (String((await execa('pgrep', ['-f', marker], { reject: false })).stdout) === '') {
      if (Date.now() - started > 20_000) throw new Error('the command never started');
      await new Promise((r) => setTimeout(r, 100));
    }
    server.kill('SIGKILL');
    await server;
    await new Promise((r) => setTimeout(r, 500));
    expect(String((await execa('pgrep', ['-f', marker], { reject: false })).stdout), 'no orphan').to.equal('');
    expect(mountsUnder(root)).to.deep.equal([]);
  });
});
