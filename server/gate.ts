import { say, type Said } from '../i18n/say.ts';
import { TransientError } from '../core/errors.ts';

/**
 * A bounded line for heavy work (PDF sheets, town packages): at most `running` jobs at once and
 * `waiting` more in line; a caller beyond that is refused at once with a TransientError (503) that
 * carries `retryAfterS`, rather than piling up memory and CPU until the server stops answering.
 * A caller whose signal aborts (client gone, time limit) leaves the line, or is told to stop
 * through the signal its work receives.
 */
export class WorkGate {
  private active = 0;
  private readonly line: { start: () => void; signal: AbortSignal; drop: () => void }[] = [];
  /** Mean seconds of recent jobs (exponential average), for Retry-After. */
  private meanS = 10;

  constructor(
    readonly name: string,
    /** What the work is called in a refusal, in the reader's language. */
    readonly what: Said,
    readonly running: number,
    readonly waiting: number,
  ) {
    if (!(running >= 1)) throw new RangeError(`${name}: at least one job must run at once`);
  }

  get stats() {
    return { running: this.active, waiting: this.line.length };
  }

  /** Runs `work` when a place is free; throws TransientError when the line is full or `signal`'s reason when it aborts first. */
  async run<T>(signal: AbortSignal, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
    signal.throwIfAborted();
    if (this.active >= this.running) {
      if (this.line.length >= this.waiting) {
        const retryAfterS = Math.max(5, Math.ceil((this.meanS * (this.line.length + this.active)) / this.running));
        throw new TransientError(
          say('busy', { what: this.what, active: this.active, waiting: this.line.length, seconds: retryAfterS }),
          { retryAfterS },
        );
      }
      await new Promise<void>((resolve, reject) => {
        const entry = {
          signal,
          start: () => {
            // the place passes straight to this caller, so a newcomer cannot slip in between
            this.active++;
            signal.removeEventListener('abort', entry.drop);
            resolve();
          },
          drop: () => {
            const i = this.line.indexOf(entry);
            if (i >= 0) this.line.splice(i, 1);
            reject(signal.reason);
          },
        };
        signal.addEventListener('abort', entry.drop, { once: true });
        this.line.push(entry);
      });
    } else {
      this.active++;
    }
    const t0 = performance.now();
    try {
      return await work(signal);
    } finally {
      this.meanS = 0.7 * this.meanS + 0.3 * ((performance.now() - t0) / 1000);
      this.active--;
      this.line.shift()?.start();
    }
  }
}
