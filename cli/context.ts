import { loadConfig, type Config } from '../config/env.ts';
import { createLogger, type Logger } from '../core/log.ts';
import { openDb, type Db } from '../store/db.ts';

/** What a command needs, opened lazily and closed once. */
export class CliContext {
  readonly config: Config;
  readonly log: Logger;
  private db?: Promise<Db>;

  constructor(config: Config = loadConfig()) {
    this.config = config;
    this.log = createLogger(config.TUBAN_LOG_LEVEL);
  }

  /** `statementTimeoutMs`: for the server, whose statements end with their request (the first call decides). */
  database(opts: { statementTimeoutMs?: number } = {}): Promise<Db> {
    this.db ??= openDb(this.config, opts);
    return this.db;
  }

  async close(): Promise<void> {
    const db = this.db && (await this.db.catch(() => null)); // one that never opened has nothing to close
    if (db) await db.destroy();
  }
}
