/**
 * A build's confinement, made once per build and undone when it ends: its
 * cgroup (processes, memory), its volume (disk) and its network namespace.
 * Every command of the build runs inside all three (sandbox.ts); `limitHit`
 * asks the kernel whether one of the limits stopped something. Made and
 * undone by one cleanup stack, so a jail made halfway leaves nothing either.
 */
import type { Cleanup } from '../process/cleanup.ts';
import { settledAll } from '../process/settled.ts';
import { BuildCgroup, type Layout, detectLayout, parentName } from './cgroups.ts';
import { type NetworkMode, openNetwork } from './network.ts';
import { probeUserNamespaces } from './userns.ts';
import { type Volume, openVolume } from './volume.ts';

export interface JailOptions {
  network: NetworkMode;
  /** builder.blocked: networks the isolated network refuses besides the host's own and link-local ones. */
  blocked?: readonly string[];
  /** builder.limits: processes, memory (MiB), disk (MiB); 0 turns one off. */
  limits: { processes: number; memory: number; disk: number };
  /** paths.state: whose builds these are (names the cgroup parent). */
  stateDir: string;
  /** The cgroup's name: the build's temp folder's, so the start-up sweep can tell whose it is. */
  name: string;
  /** builder.workers: how many builds share host root's per-user kernel limits. */
  workers?: number;
  /** builder.min_free in MiB: what the volume leaves free on the workdir's disk (the rest is shared among builder.workers builds). */
  keepFreeMiB?: number;
  layout?: Layout;
}

/** What a sandboxed command needs of its build's confinement. */
export interface Confinement {
  network: NetworkMode;
  /** The namespace to enter; null with `none` means a fresh loopback-only one per command. */
  netns: string | null;
  /** Shown at /etc/resolv.conf in the chroot (null: left as the image has it). */
  resolvConf: string | null;
  /** cgroup.procs files a command joins before it starts anything. */
  cgroupProcs: string[];
  /** A command's user namespace gets host root's per-user kernel limits divided by this (userns.ts kernelShares). */
  shareParts: number;
}

/** A command outside any build: its own loopback-only network, no cgroup. */
export const UNCONFINED: Confinement = { network: 'none', netns: null, resolvConf: null, cgroupProcs: [], shareParts: 4 };

export class Jail implements Confinement {
  private constructor(
    readonly options: JailOptions,
    /** Where the build's trees go: the volume, or the temp folder itself without a disk limit. */
    readonly treeDir: string,
    readonly network: NetworkMode,
    readonly netns: string | null,
    readonly resolvConf: string | null,
    private readonly cgroup: BuildCgroup | null,
    private readonly volume: Volume | null,
  ) {}

  get cgroupProcs(): string[] {
    return this.cgroup?.procs ?? [];
  }

  get shareParts(): number {
    return 2 * (this.options.workers ?? 2);
  }

  /** Makes the jail of a build in its temp folder `dir`; `cleanup` undoes it (and whatever part of it was made). */
  static async open(dir: string, options: JailOptions, cleanup: Cleanup): Promise<Jail> {
    const { limits } = options;
    await probeUserNamespaces();
    const layout = options.layout ?? detectLayout();
    const makeCgroup = async (): Promise<BuildCgroup | null> => {
      if (limits.processes === 0 && limits.memory === 0) return null;
      const made = await BuildCgroup.create(layout, parentName(options.stateDir), options.name, { processes: limits.processes, memoryMiB: limits.memory });
      cleanup.defer('the build cgroup', () => made.remove());
      return made;
    };
    // The three side by side (each pushes its own undo); all have ended, made or failed, before a failure is thrown,
    // so that the cleanup stack holds whatever was made when the caller undoes it.
    const [cgroup, volume, network] = await settledAll([
      makeCgroup(),
      limits.disk > 0 ? openVolume(dir, limits.disk, cleanup, { keepFreeMiB: options.keepFreeMiB ?? 0, builds: options.workers ?? 1 }) : Promise.resolve(null),
      openNetwork(dir, options.network, layout, cleanup, options.blocked),
    ]);
    return new Jail(options, volume?.path ?? dir, network.mode, network.netns, network.resolvConf, cgroup, volume);
  }

  /** The tree kept outside the volume that the build's root stands on (bytes, 0: none): it counts against builder.limits.disk (Volume.below). */
  standOn(bytes: number): void {
    if (this.volume) this.volume.below = bytes;
  }

  /** The limit the build ran into, as one line for the pusher, or null. */
  async limitHit(): Promise<string | null> {
    const { limits } = this.options;
    const hits = (await this.cgroup?.hits()) ?? { processes: false, memory: false };
    if (hits.memory) return `the build ran out of memory: it may use ${limits.memory} MiB, swap included (builder.limits.memory), and a process of it was killed`;
    if (hits.processes) return `the build reached its limit of ${limits.processes} processes (builder.limits.processes): a process could not be started`;
    if (this.volume && (await this.volume.full())) {
      const why = this.volume.mib < limits.disk ? `, its share of what the workdir's disk had free beyond builder.min_free (builder.limits.disk is ${limits.disk} MiB)` : ' (builder.limits.disk)';
      const { below: bytes } = this.volume;
      const below = bytes > 0 ? `, the cached tree it builds on (${Math.ceil(bytes / 1024 / 1024)} MiB) included` : '';
      return `the build filled its disk: it may use ${this.volume.mib} MiB${why}${below}`;
    }
    return null;
  }
}
