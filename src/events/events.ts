/**
 * What happened to an app, for whoever listens (the webhooks): a build began
 * or ended, a release was made current for good or failed its deploy. Core
 * operations emit them after the fact; a listener never holds an operation up
 * and its failure is never the operation's.
 */

export const EVENT_NAMES = ['build.started', 'build.succeeded', 'build.failed', 'release.created', 'release.failed'] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/** An event as a webhook's JSON body carries it. */
export interface AppEvent {
  event: EventName;
  app: string;
  build?: { id: number; status: 'running' | 'succeeded' | 'failed'; revision: string | null; fresh: boolean; error?: string };
  release?: { version: number; kind: 'build' | 'rollback'; by: string | null; status: 'ok' | 'failed'; failure?: string };
  package?: { id: string; revision: string; bytes: number };
  /** ISO 8601. */
  at: string;
}

/** Takes events; must return at once (deliveries happen later, elsewhere). */
export interface EventSink {
  emit(event: AppEvent): void;
}

/** Emits to `sink` if there is one; a sink that throws is the sink's problem, never the operation's. */
export function emit(sink: EventSink | undefined, event: Omit<AppEvent, 'at'>): void {
  try {
    sink?.emit({ ...event, at: new Date().toISOString() });
  } catch {
    // a listener never breaks what it listens to
  }
}
