import { say } from '../i18n/say.ts';
import { TooManyError } from '../core/errors.ts';

/**
 * Failed logins counted per key (a user name with the address it came from, an address) in a sliding
 * window; once a key has `max` failures in the window, further attempts are refused (429, Retry-After)
 * until the oldest failure leaves it. An attempt is counted when it starts (`reserve`), before the
 * password is checked, so forty attempts sent at once are held to the limit like forty in a row; one
 * that succeeds gives its place back and clears the user's count. Held in this process's memory: one
 * server process guards itself; bounded to `maxKeys` keys, the stalest dropped first.
 */
export class FailureLimiter {
  private readonly failures = new Map<string, number[]>();

  constructor(
    readonly windowMs: number,
    readonly maxKeys = 50_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Throws TooManyError when any of `keys` (with its limit) is at its limit now. */
  check(keys: { key: string; max: number; who: { username: string } | { address: string } }[]): void {
    const t = this.now();
    for (const { key, max, who } of keys) {
      const recent = this.recent(key, t);
      if (recent.length >= max) {
        const retryAfterS = Math.max(1, Math.ceil((recent[0] + this.windowMs - t) / 1000));
        const text =
          'username' in who
            ? say('too_many_logins_user', { ...who, seconds: retryAfterS })
            : say('too_many_logins_address', { ...who, seconds: retryAfterS });
        throw new TooManyError(text, retryAfterS);
      }
    }
  }

  /**
   * Checks the keys (throws TooManyError at a limit) and counts this attempt against each at once, in
   * the same tick: an attempt in flight counts. Returns a release for an attempt that did not fail (a
   * success, or an error that says nothing of the password), which takes its count back.
   */
  reserve(keys: { key: string; max: number; who: { username: string } | { address: string } }[]): () => void {
    this.check(keys);
    const t = this.now();
    this.fail(
      keys.map((k) => k.key),
      t,
    );
    let released = false;
    return () => {
      if (released) return;
      released = true;
      for (const { key } of keys) {
        const list = this.failures.get(key);
        const i = list?.lastIndexOf(t) ?? -1;
        if (list && i >= 0) list.splice(i, 1);
      }
    };
  }

  fail(keys: string[], t = this.now()): void {
    for (const key of keys) {
      const recent = this.recent(key, t);
      recent.push(t);
      this.failures.delete(key); // re-inserted last: the Map's order is staleness
      this.failures.set(key, recent);
    }
    while (this.failures.size > this.maxKeys) this.failures.delete(this.failures.keys().next().value as string);
  }

  clear(key: string): void {
    this.failures.delete(key);
  }

  private recent(key: string, t: number): number[] {
    return (this.failures.get(key) ?? []).filter((at) => at > t - this.windowMs);
  }
}
