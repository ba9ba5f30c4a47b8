import { Command, Option } from 'commander';
import { LAYER_KINDS } from '../../pipeline/layer.parse.ts';

// what the commands run is loaded when one runs: `tuban --help` and the light commands start fast
const commands = () => import('../commands.setup.ts');
import { context, isoDate, month, num } from '../options.ts';

/** `tuban` commands: db, layers, imagery: what a month's batch needs in place. */
export function setupCommands(program: Command): void {
  program
    .command('db')
    .description('database')
    .command('migrate')
    .description('apply the schema (knex migrations from sql/migrations); run it as the owner role')
    .option(
      '--app-role <role>',
      'the role the server and workers log in as: granted rows in the tables, not ownership (default TUBAN_APP_ROLE)',
    )
    .action(async (o: { appRole?: string }) => {
      const c = context();
      if (o.appRole) c.config.TUBAN_APP_ROLE = o.appRole;
      console.log(await (await commands()).cmdMigrate(await c.database(), c.config));
    });

  program
    .command('layers')
    .description('reference layers')
    .command('import <file>')
    .description('load a GeoJSON reference layer into PostGIS (repairs invalid geometry, reports rejected features)')
    .addOption(new Option('--kind <kind>', 'layer kind').choices(LAYER_KINDS).makeOptionMandatory())
    .option('--srid <n>', "EPSG code of the coordinates (default: the file's crs member, else 4326)", num('--srid'))
    .action(async (file: string, o: { kind: string; srid?: number }) => {
      const c = context();
      const r = await (await commands()).cmdLayersImport(await c.database(), file, o.kind, o.srid);
      console.log(r.text);
      if (!r.ok) process.exitCode = 2;
    });

  program
    .command('imagery')
    .description('imagery')
    .command('register <paths...>')
    .description("register a month's GeoTIFFs: files, folders, s3://bucket/prefix/ or http(s):// URLs")
    .requiredOption('--month <YYYY-MM>', 'month of the imagery', month)
    .option('--date <YYYY-MM-DD>', 'acquisition date (default: first day of the month)', isoDate('--date'))
    .action(async (paths: string[], o: { month: string; date?: string }) => {
      const c = context();
      const r = await (await commands()).cmdImageryRegister(await c.database(), c.config, o.month, paths, o.date);
      console.log(r.text);
      if (!r.ok) process.exitCode = 2;
    });
}
