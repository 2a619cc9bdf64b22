/**
 * How many git processes (fetches, pushes) one user may have at once, over
 * SSH and HTTP together (server.git_per_user): one user's clients cannot
 * hold every process slot of the server.
 */
export class GitSlots {
  private readonly used = new Map<string, number>();

  constructor(private readonly perUser: number) {}

  /** Takes a slot for `user`: a release function, or null when the user has all theirs in use. */
  take(user: string): (() => void) | null {
    const count = this.used.get(user) ?? 0;
    if (count >= this.perUser) return null;
    this.used.set(user, count + 1);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const left = (this.used.get(user) ?? 1) - 1;
      if (left <= 0) this.used.delete(user);
      else this.used.set(user, left);
    };
  }
}
