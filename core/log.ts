/** Structured logs: one JSON line per event with a stable name (`Part:Detected`) and its numbers. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';
const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
}

export function createLogger(
  level: LogLevel = 'info',
  write: (line: string) => void = (l) => process.stderr.write(l + '\n'),
): Logger {
  const emit = (lvl: LogLevel, event: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[lvl] < ORDER[level]) return;
    write(JSON.stringify({ time: new Date().toISOString(), level: lvl, event, ...fields }));
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
  };
}

/**
 * Times named stages in milliseconds (to 0.1 ms); the benchmarks and the logs read the same numbers.
 * Either around a piece of work (`time`) or as laps: `lap(stage)` charges the time since the last lap
 * (or since `restart`) to the stage.
 */
export class StageTimer {
  readonly ms: Record<string, number> = {};
  private last = performance.now();

  async time<T>(stage: string, fn: () => Promise<T> | T): Promise<T> {
    const t0 = performance.now();
    try {
      return await fn();
    } finally {
      this.add(stage, performance.now() - t0);
      this.last = performance.now();
    }
  }

  /** Charges the time since the last lap to `stage`, less `lessMs` already charged elsewhere; returns what it charged. */
  lap(stage: string, lessMs = 0): number {
    const now = performance.now();
    const ms = this.add(stage, now - this.last - lessMs);
    this.last = now;
    return ms;
  }

  /** The next lap starts now (the time since the last one is nobody's). */
  restart(): void {
    this.last = performance.now();
  }

  /** Adds `ms` to a stage; returns the amount added. */
  add(stage: string, ms: number): number {
    const added = Math.round(Math.max(0, ms) * 10) / 10;
    this.ms[stage] = Math.round(((this.ms[stage] ?? 0) + added) * 10) / 10;
    return added;
  }
}
