import { Command } from 'commander';
import { cityTime } from '../../core/time.ts';
import { context, month, num } from '../options.ts';
import type { ModelRow } from '../../store/models.ts';

/** `tuban model`: the city's change models, fine-tuned on its verified patches and promoted by a held-out month. */
export function modelCommands(program: Command): void {
  const model = program
    .command('model')
    .description("change models: fine-tune on the city's verdicts, evaluate on a held-out month, promote, roll back");
  const env = async () => {
    const c = context();
    return { db: await c.database(), config: c.config, actor: 'cli' };
  };
  const lib = () => import('../../training/models.ts');
  const evaluation = () => import('../../training/evaluate.ts');
  const id = num('ID');

  model
    .command('list')
    .description('every model in the register: version, state, what it was trained on, its last evaluation')
    .option('--json', 'one JSON array')
    .action(async (o: { json?: boolean }) => {
      const { listModelsNow, ensureRunning, trainingProgress } = await lib();
      const e = await env();
      await ensureRunning(e);
      const rows = await listModelsNow(e);
      if (o.json) return console.log(JSON.stringify(rows.map((r) => ({ ...r, progress: trainingProgress(r) }))));
      console.log(['id', 'model', 'state', 'trained on', 'held-out', 'promoted'].join('\t'));
      for (const r of rows) console.log(listLine(r, trainingProgress(r), context().config.TUBAN_UTC_OFFSET_H));
    });

  model
    .command('register <dir>')
    .description('add a model folder (manifest.json, model.onnx, weights.npz) to the register as a candidate')
    .action(async (dir: string) => {
      const { registerModel, ensureRunning } = await lib();
      const e = await env();
      await ensureRunning(e);
      const r = await registerModel(e, dir);
      console.log(`#${r.id} ${r.name} ${r.version}: ${r.status} (${r.dir})`);
    });

  model
    .command('train')
    .description(
      'fine-tune the running model on the verified patches of --since…--until, with TUBAN_TRAINING_REPLAY replayed, in the background',
    )
    .option('--since <YYYY-MM>', 'first month of verdicts', month)
    .option('--until <YYYY-MM>', 'last month of verdicts (default: the latest month with patches)', month)
    .option('--steps <n>', 'optimiser steps at most (default 300)', num('--steps'))
    .option(
      '--minutes <n>',
      'minutes of training at most (whichever of steps or minutes comes first)',
      num('--minutes'),
      60,
    )
    .option('--batch <n>', 'samples per step', num('--batch'))
    .option('--crop <px>', 'sample size in pixels', num('--crop'))
    .option('--lr <f>', 'learning rate (default 5e-5)', num('--lr'))
    .option(
      '--city-share <f>',
      "share of samples from the city's chips when replay folders are set (default 0.3)",
      num('--city-share'),
    )
    .option(
      '--anchor <w>',
      "weight of the squared distance from the running model's weights in the loss (L2-SP; default 0: off)",
      num('--anchor'),
    )
    .option(
      '--quiet-m <m>',
      'count unjudged ground at least this far from every patch of its month as no change (default: only verdicts)',
      num('--quiet-m'),
    )
    .option('--resume <id>', 'go on with a stopped fine-tune from its last checkpoint', id)
    .option('--wait', 'stay until the run ends (else it goes on in the background: tuban model list shows it)')
    .action(
      async (o: {
        since?: string;
        until?: string;
        steps?: number;
        minutes: number;
        batch?: number;
        crop?: number;
        cityShare?: number;
        lr?: number;
        anchor?: number;
        quietM?: number;
        resume?: number;
        wait?: boolean;
      }) => {
        const { startTraining, resumeTraining, trainingProgress } = await lib();
        const e = await env();
        if (o.resume === undefined && !o.since)
          throw new (await import('../../core/errors.ts')).BadInputError(
            'bad_option',
            '--since is required (or --resume ID)',
            { field: '--since' },
          );
        const r =
          o.resume !== undefined
            ? await resumeTraining(e, o.resume, o.wait)
            : await startTraining(e, {
                since: o.since!,
                until: o.until,
                steps: o.steps,
                minutes: o.minutes,
                batch: o.batch,
                crop: o.crop,
                cityShare: o.cityShare,
                lr: o.lr,
                anchor: o.anchor,
                quietM: o.quietM,
                wait: o.wait,
              });
        const t = r.trained_on!;
        console.log(
          `#${r.id} ${r.name} ${r.version}: ${r.status} — ${t.chips} chips (${t.positives} change, ${t.negatives} no change) from ${t.since}…${t.until}${t.replay.length ? `, replaying ${t.replay.join(', ')}` : ''}`,
        );
        if (r.status === 'training')
          console.log(
            `log ${t.runDir}/train.log; progress: tuban model list; stopped runs: tuban model train --resume ${r.id}`,
          );
        else if (r.status === 'failed') {
          console.error(t.error);
          process.exitCode = 1;
        } else {
          const p = trainingProgress(r);
          console.log(`trained: ${p?.step} steps in ${p?.seconds} s → ${r.dir}`);
        }
      },
    );

  model
    .command('evaluate')
    .description(
      "the candidate beside the running model on a month of verdicts it was not trained on, and on TUBAN_MODEL_VALIDATION's sets",
    )
    .requiredOption('--month <YYYY-MM>', 'the held-out month', month)
    .option('--model <id>', 'the candidate (default: the newest)', id)
    .option('--json', 'the figures as JSON')
    .action(async (o: { month: string; model?: number; json?: boolean }) => {
      const { evaluateModel, evaluationText } = await evaluation();
      const ev = await evaluateModel(await env(), { month: o.month, id: o.model });
      console.log(o.json ? JSON.stringify(ev) : evaluationText(ev));
    });

  model
    .command('promote <id>')
    .description(
      'let a candidate run new batches: only when its held-out month improves and no shared set falls by more than 0.01 pixel F1',
    )
    .action(async (v: string) => {
      const { promoteModel } = await evaluation();
      const r = await promoteModel(await env(), id(v));
      console.log(
        `#${r.promoted.id} ${r.promoted.name} ${r.promoted.version} runs new batches (it replaces #${r.replaced.id} ${r.replaced.version}):`,
      );
      for (const line of r.verdict.reasons) console.log(`  ${line}`);
    });

  model
    .command('rollback')
    .description('put back the model the running one replaced')
    .option('--reason <text>', 'why, for the history')
    .action(async (o: { reason?: string }) => {
      const { rollbackModel } = await lib();
      const r = await rollbackModel(await env(), o.reason);
      console.log(
        `#${r.to.id} ${r.to.name} ${r.to.version} runs new batches again; #${r.from.id} ${r.from.version} set aside`,
      );
    });

  model
    .command('show <id>')
    .description("a model's card: manifest, training, evaluations and history")
    .action(async (v: string) => {
      const { getModel, modelEvents } = await import('../../store/models.ts');
      const { refreshTraining, trainingProgress } = await lib();
      const e = await env();
      const m = await refreshTraining(e, await getModel(e.db, id(v)));
      console.log(
        JSON.stringify({ ...m, progress: trainingProgress(m), history: await modelEvents(e.db, m.id) }, null, 2),
      );
    });
}

function listLine(
  r: ModelRow,
  p: { step: number; steps: number; share: number; seconds: number } | null,
  offsetH: number,
): string {
  const t = r.trained_on;
  const ev = r.evaluation as {
    month: string;
    candidate: { heldOut: { score: number } };
    running: { heldOut: { score: number } };
    verdict: { promote: boolean };
  } | null;
  const state =
    r.status === 'training' && p
      ? `training ${(p.share * 100).toFixed(0)}% (step ${p.step}, ${Math.round(p.seconds / 60)} min)`
      : r.status;
  return [
    `#${r.id}`,
    `${r.name} ${r.version}`,
    state,
    t ? `${t.since}…${t.until}, ${t.chips} chips` : '-',
    ev
      ? `${ev.month}: ${ev.candidate.heldOut.score.toFixed(3)} vs ${ev.running.heldOut.score.toFixed(3)}${ev.verdict.promote ? '' : ' (refused)'}`
      : '-',
    cityTime(r.promoted_at, offsetH) ?? '-',
  ].join('\t');
}
