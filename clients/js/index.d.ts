/** What `pusher.herald` holds once the add-on is installed. */
export interface HeraldResume {
  /** Per channel, the position of the last event the app received, and the socket it came on. */
  positions: Map<string, { seq: string; socketId: string | null }>;
  /** Resumes so far: how many succeeded, failed, and how many events were replayed. */
  stats: { resumed: number; failed: number; replayed: number };
  /** `resumed` ({channel, after, replayed}) or `resume_failed` ({channel, reason, after, lost_through, replayed}). */
  on(event: 'resumed' | 'resume_failed', callback: (data: any) => void): void;
}

/** Returns a subclass of the pusher-js class whose instances resume (for `window.Pusher`). */
export function withResume<T extends new (...args: any[]) => any>(Pusher: T): T;
/** Installs the add-on on a pusher-js instance before it connects; returns `pusher.herald`. */
export function install(pusher: any): HeraldResume;
declare const _default: { withResume: typeof withResume; install: typeof install };
export default _default;
