/**
 * The seccomp filter of every build command: the kernel keyring calls
 * (add_key, request_key, keyctl) fail with ENOSYS, as Docker's default
 * profile has them. Keyrings are the kernel's per-uid store, and root in a
 * build is uid 0 like the host's root (userns.ts maps ids to themselves, to
 * keep files' owners): without this a build could read, plant or delete the
 * keys of the host's root (systemd keeps disk passphrases there), and
 * request_key makes the kernel run /sbin/request-key as host root, in the
 * host's network and outside the build's cgroup. Every other call is allowed.
 *
 * Classic BPF, assembled here: for the machine's own calling convention and
 * its 32-bit one (x86_64's x32 numbers too), the three numbers are refused.
 */

/** struct seccomp_data offsets, BPF opcodes and seccomp return values (linux/filter.h, linux/seccomp.h). */
const NR = 0;
const ARCH = 4;
const LD_W_ABS = 0x20;
const JEQ_K = 0x15;
const AND_K = 0x54;
const RET_K = 0x06;
const RET_ALLOW = 0x7fff0000;
const RET_ERRNO = 0x00050000;
const ENOSYS = 38;

interface CallingConvention {
  /** AUDIT_ARCH_* */
  arch: number;
  /** add_key, request_key, keyctl */
  calls: [number, number, number];
  /** x86_64: x32 calls are the same numbers with this bit set. */
  x32Bit?: number;
}

const CONVENTIONS: Record<string, CallingConvention[]> = {
  x64: [
    { arch: 0xc000003e, calls: [248, 249, 250], x32Bit: 0x40000000 },
    { arch: 0x40000003, calls: [286, 287, 288] },
  ],
  arm64: [
    { arch: 0xc00000b7, calls: [217, 218, 219] },
    { arch: 0x40000028, calls: [309, 310, 311] },
  ],
};

/** The filter for `machine` (os.arch()) as struct sock_filter bytes (little-endian hosts), or null when upaas does not know its numbers. */
export function keyringFilter(machine: string): Buffer | null {
  const conventions = CONVENTIONS[machine];
  if (!conventions) return null;
  // Per convention a section: load arch; not it: on to the next section; load
  // nr (x32 bit cleared); a refused call: to DENY; else ALLOW. Then ALLOW, DENY.
  const sizes = conventions.map((c) => 4 + (c.x32Bit ? 1 : 0) + c.calls.length);
  const allowAt = sizes.reduce((a, b) => a + b, 0);
  const denyAt = allowAt + 1;
  const program: [code: number, jt: number, jf: number, k: number][] = [];
  let at = 0;
  for (const [index, convention] of conventions.entries()) {
    const next = at + (sizes[index] as number);
    program.push([LD_W_ABS, 0, 0, ARCH]);
    program.push([JEQ_K, 0, next - program.length - 1, convention.arch]);
    program.push([LD_W_ABS, 0, 0, NR]);
    if (convention.x32Bit) program.push([AND_K, 0, 0, ~convention.x32Bit >>> 0]);
    for (const call of convention.calls) program.push([JEQ_K, denyAt - program.length - 1, 0, call]);
    program.push([RET_K, 0, 0, RET_ALLOW]);
    at = next;
  }
  program.push([RET_K, 0, 0, RET_ALLOW]);
  program.push([RET_K, 0, 0, RET_ERRNO | ENOSYS]);
  const bytes = Buffer.alloc(program.length * 8);
  for (const [index, [code, jt, jf, k]] of program.entries()) {
    if (jt > 255 || jf > 255) throw new Error('seccomp: jump too far');
    bytes.writeUInt16LE(code, index * 8);
    bytes.writeUInt8(jt, index * 8 + 2);
    bytes.writeUInt8(jf, index * 8 + 3);
    bytes.writeUInt32LE(k >>> 0, index * 8 + 4);
  }
  return bytes;
}
