import { Command, Option } from 'commander';
import { EXPORT_FORMATS } from '../../export/formats.ts';

// what the commands run is loaded when one runs: `tuban --help` and the light commands start fast
const commands = () => import('../commands.tools.ts');
import { patchListText } from '../format.ts';
import { context, month, num, states } from '../options.ts';

/** `tuban` commands: detect and vectorize without database, patch lists and exports, eval, training data. */
export function toolsCommands(program: Command): void {
  program
    .command('detect <before> <after>')
    .description('change probability for one image pair (no database or queue)')
    .requiredOption('-o, --output <prob.tif>', 'output GeoTIFF')
    .option('--model <dir>', 'model folder (default: TUBAN_MODEL_DIR)')
    .action(async (before: string, after: string, o: { output: string; model?: string }) => {
      console.log(await (await commands()).cmdDetect(context().config, before, after, o.output, o.model));
    });

  program
    .command('vectorize <raster>')
    .description('mask or probability GeoTIFF → polygons (GeoJSON, raster CRS)')
    .requiredOption('-o, --output <out.geojson>', 'output GeoJSON')
    .option('--threshold <p>', 'probability threshold', num('--threshold'), 0.5)
    .option('--min-area-m2 <n>', 'drop smaller polygons', num('--min-area-m2'), 0)
    .option(
      '--simplify-m <n>',
      'Douglas–Peucker tolerance in metres (0 = exact pixel outlines)',
      num('--simplify-m'),
      0,
    )
    .option(
      '--interior-threshold <p>',
      'building-interior probability that seeds a split, when the raster has the interior as band 2',
      num('--interior-threshold'),
      0.5,
    )
    .action(
      async (
        raster: string,
        o: { output: string; threshold: number; minAreaM2: number; simplifyM: number; interiorThreshold: number },
      ) => {
        console.log(await (await commands()).cmdVectorize(raster, o.output, o));
      },
    );

  const patchesCmd = program.command('patches').description('patches');
  patchesCmd
    .command('act <action>')
    .description(
      'one action on many patches (dispatch, dismiss, extend, escalate, close), as a named user with their role and town; each patch judged on its own',
    )
    .requiredOption('--as <user>', 'the user who acts (their role and town decide what they may do)')
    .option('--month <YYYY-MM>', 'the patches of this month', month)
    .option('--town <code>', 'only this town')
    .option('--status <state>', 'only patches in this state')
    .option('--class <class>', 'only this class (ecological, farmland, water, general)')
    .option('--codes <a,b,…>', 'these patches', (v: string) =>
      v
        .split(',')
        .map((c) => c.trim())
        .filter(Boolean),
    )
    .option(
      '--reason <text>',
      'the reason (dismiss: cloud, shadow, vehicle, seasonal_crop, duplicate, other; extend, escalate, close: words)',
    )
    .option('--working-days <n>', 'extend: working days to add', num('--working-days'))
    .option('--dry-run', 'judge every patch and move none')
    .option('--json', 'one JSON object')
    .action(
      async (
        action: string,
        o: {
          as: string;
          month?: string;
          town?: string;
          status?: string;
          class?: string;
          codes?: string[];
          reason?: string;
          workingDays?: number;
          dryRun?: boolean;
          json?: boolean;
        },
      ) => {
        const c = context();
        const [{ applyBulk, BulkSelection }, { loadWorkflowEnv }, { userByName }, { render }] = await Promise.all([
          import('../../store/bulk.ts'),
          import('../../store/calendar.ts'),
          import('../../store/users.ts'),
          import('../../i18n/say.ts'),
        ]);
        const { randomUUID } = await import('node:crypto');
        const db = await c.database();
        const parsed = BulkSelection.safeParse({
          codes: o.codes,
          month: o.month,
          town: o.town,
          status: o.status,
          class: o.class,
        });
        if (!parsed.success) {
          const [{ BadInputError }, { formatIssues }] = await Promise.all([
            import('../../core/errors.ts'),
            import('../../core/issues.ts'),
          ]);
          throw new BadInputError('bad_selection', `patches act: ${formatIssues(parsed.error.issues)}`);
        }
        const select = parsed.data;
        const body: Record<string, unknown> = {};
        if (o.reason !== undefined) body.reason = o.reason;
        if (action === 'extend') Object.assign(body, { working_days: o.workingDays, request_key: randomUUID() });
        const r = await applyBulk(
          db,
          await loadWorkflowEnv(db, c.config),
          await userByName(db, o.as),
          action as never,
          body,
          select,
          { dryRun: o.dryRun },
        );
        const words = (o2: (typeof r.outcomes)[number]) =>
          o2.error?.err.said ? render(o2.error.err.said, 'en') : o2.error?.err.message;
        if (o.json)
          console.log(
            JSON.stringify({
              ...r,
              outcomes: r.outcomes.map((x) => ({
                ...x,
                error: x.error ? { kind: x.error.kind, message: words(x) } : undefined,
              })),
            }),
          );
        else {
          for (const x of r.outcomes)
            console.log(
              x.moved ? `  ${x.code} ${x.from} → ${x.to}` : `  ${x.code} refused: ${words(x) ?? 'applied before'}`,
            );
          const moved = r.outcomes.filter((x) => x.moved).length;
          console.log(
            `${r.dry_run ? 'dry run: would move' : 'moved'} ${moved} of ${r.matched} patch(es) (${action}); ${r.outcomes.length - moved} not`,
          );
        }
      },
    );

  patchesCmd
    .command('list')
    .description('patches first detected in a month')
    .requiredOption('--month <YYYY-MM>', 'month', month)
    .option('--town <code>', 'only this town')
    .option('--json', 'JSON output (geometry in lon/lat)')
    .action(async (o: { month: string; town?: string; json?: boolean }) => {
      const { listPatches } = await import('../../store/batch.ts');
      const rows = await listPatches(await context().database(), o.month, o.town ?? null);
      console.log(o.json ? JSON.stringify(rows) : patchListText(o.month, rows));
    });

  patchesCmd
    .command('export')
    .description("the month's patch list as a GIS file or spreadsheet")
    .requiredOption('--month <YYYY-MM>', 'month', month)
    .option('--town <code>', 'only this town')
    .addOption(new Option('--format <fmt>', 'output format').choices(EXPORT_FORMATS).makeOptionMandatory())
    .requiredOption('-o, --output <path>', 'output file (a folder for shp), or s3://bucket/key (a prefix for shp)')
    .option(
      '--status <states>',
      'only patches in these states, comma-separated, or "open" (the unfinished ones)',
      states,
    )
    .action(async (o: { month: string; town?: string; format: string; output: string; status?: string[] }) => {
      const c = context();
      const [{ exportPatchesTo }, { loadWorkflowEnv }] = await Promise.all([
        import('../../export/patches.ts'),
        import('../../store/calendar.ts'),
      ]);
      const db = await c.database();
      const r = await exportPatchesTo(db, await loadWorkflowEnv(db, c.config), {
        month: o.month,
        town: o.town,
        format: o.format,
        outPath: o.output,
        storageSrid: c.config.TUBAN_STORAGE_SRID,
        fontPath: c.config.TUBAN_PDF_FONT,
        states: o.status ?? null,
      });
      console.log(`${r.count} patch(es) → ${r.files.join(', ')}`);
    });

  program
    .command('eval')
    .description('pixel and object metrics of a change model on a labelled dataset (A/, B/, label/)')
    .requiredOption('--dataset <dir>', 'dataset folder')
    .option('--model <dir>', 'model folder (default TUBAN_MODEL_DIR)')
    .option('--threshold <p>', "probability threshold (default: the model's)", num('--threshold'))
    .option('--gsd <m>', "ground sample distance of the images in metres (default: the model's)", num('--gsd'))
    .option(
      '--split <file.json>',
      'evaluate only the validation images the split file names for this folder (e.g. models/siam-unet-lite/split.json)',
    )
    .option(
      '--interior-threshold <p>',
      "interior probability that seeds a split of touching buildings (default: the model's)",
      num('--interior-threshold'),
    )
    .option(
      '--no-split-objects',
      'count objects as the 8-connected regions of the mask, without splitting touching buildings',
    )
    .option(
      '--min-area-m2 <n>',
      'drop predicted objects smaller than this, as the batch drops patches under TUBAN_MIN_AREA_M2 (default 0: keep all)',
      num('--min-area-m2'),
    )
    .option('--json', 'print one JSON object')
    .action(
      async (o: {
        dataset: string;
        model?: string;
        threshold?: number;
        gsd?: number;
        split?: string;
        interiorThreshold?: number;
        splitObjects: boolean;
        minAreaM2?: number;
        json?: boolean;
      }) => {
        const { evalText, evaluateDataset } = await import('../../training/dataset.eval.ts');
        const r = await evaluateDataset(o.dataset, o.model ?? context().config.modelDir, {
          threshold: o.threshold,
          gsdM: o.gsd,
          split: o.split,
          interiorThreshold: o.interiorThreshold,
          splitObjects: o.splitObjects,
          minAreaM2: o.minAreaM2,
        });
        console.log(o.json ? JSON.stringify(r) : evalText(r));
      },
    );

  const trainingCmd = program.command('training').description("training data from the city's own verified patches");
  trainingCmd
    .command('export')
    .description('before/after chips of verified patches with their verdict as the change label (A/, B/, label/)')
    .requiredOption('--month <YYYY-MM>', 'last month', month)
    .option('--since <YYYY-MM>', 'first month (default: --month)', month)
    .option('--size <px>', 'chip size in pixels (larger when a patch needs it)', num('--size'), 256)
    .requiredOption('-o, --output <dir>', 'output folder')
    .action(async (o: { month: string; since?: string; size: number; output: string }) => {
      const { exportTrainingChips } = await import('../../training/chips.ts');
      const r = await exportTrainingChips(await context().database(), {
        month: o.month,
        since: o.since,
        sizePx: o.size,
        outDir: o.output,
      });
      const change = r.chips.filter((c) => c.label === 'change').length;
      console.log(`${r.chips.length} chip(s) → ${o.output} (${change} change, ${r.chips.length - change} no change)`);
      for (const s of r.skipped) console.log(`skipped ${s.code}: ${s.reason}`);
    });
}
