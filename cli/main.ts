import { Command, CommanderError } from 'commander';
import { TubanError, errorFate } from '../core/errors.ts';
import { closeContext } from './options.ts';
import { batchCommands } from './program/batch.ts';
import { serveCommands } from './program/serve.ts';
import { setupCommands } from './program/setup.ts';
import { toolsCommands } from './program/tools.ts';
import { usersCommands } from './program/users.ts';
import { notifyCommands } from './program/notify.ts';
import { modelCommands } from './program/model.ts';

const program = new Command('tuban')
  .description('两违图斑: change detection and patch workflow for monthly satellite imagery')
  .showHelpAfterError();
for (const commands of [
  setupCommands,
  batchCommands,
  serveCommands,
  usersCommands,
  notifyCommands,
  modelCommands,
  toolsCommands,
])
  commands(program);

// commander's own refusals (a missing required option, an unknown command) are bad input: exit 2, not 1
program.exitOverride();
for (const c of program.commands.flatMap(function all(c: Command): Command[] {
  return [c, ...c.commands.flatMap(all)];
}))
  c.exitOverride();
try {
  await program.parseAsync(process.argv);
} catch (err) {
  if (err instanceof CommanderError) {
    // help and --version are not errors; commander has printed its message already
    process.exitCode = err.exitCode === 0 ? 0 : 2;
  } else if ((err as { code?: unknown }).code === '42P01') {
    // a table the command reads is missing: a database never migrated, or not the one that holds the patches
    const missing = /relation "[^"]+" does not exist/.exec((err as Error).message)?.[0] ?? (err as Error).message;
    console.error(
      `tuban: this database has no tuban tables (${missing}): run \`tuban db migrate\` first, or point ` +
        'DATABASE_URL (and TUBAN_DB_SCHEMA) or, for the embedded database, TUBAN_DATA_DIR at the one that holds ' +
        "the patches (the demo's: TUBAN_DATA_DIR=data/demo)",
    );
    process.exitCode = 2;
  } else {
    const kind = err instanceof TubanError ? err.kind : null;
    console.error(`tuban: ${(err as Error).message}`);
    if (!kind && process.env.TUBAN_LOG_LEVEL === 'debug') console.error((err as Error).stack);
    process.exitCode = kind ? errorFate[kind].exitCode : 1;
  }
} finally {
  // closing what never opened (a database that did not answer) must not hide the reason above
  await closeContext().catch(() => undefined);
}
