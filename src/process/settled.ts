/**
 * Promise.all that waits for every promise to settle before it rejects with
 * the first failure (in the order given, not in time): programs that feed
 * each other have all ended, and whatever was made has pushed its undo, by
 * the time the caller hears of a failure. A leaf any module may import.
 */
export async function settledAll<T extends readonly unknown[]>(promises: { [K in keyof T]: Promise<T[K]> }): Promise<T> {
  const results = await Promise.allSettled(promises);
  const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
  if (failed) throw failed.reason;
  return results.map((result) => (result as PromiseFulfilledResult<unknown>).value) as unknown as T;
}
