import { Command, Option } from 'commander';
import { BadInputError } from '../../core/errors.ts';
import { context, num } from '../options.ts';
import { NOTICE_EVENTS } from '../../workflow/notify.message.ts';
import { ROBOT_KINDS } from '../../workflow/notify.robots.ts';
import { cityTime } from '../../core/time.ts';

/** `tuban notify`: the group robots that hear of dispatches, deadlines, send-backs and escalations. */
export function notifyCommands(program: Command): void {
  const notify = program
    .command('notify')
    .description('group robots (企业微信, 钉钉) told of dispatches, deadlines, send-backs and escalations');
  notify
    .command('add <name>')
    .description(
      "add a group robot: a town's group (--town) or the supervisors' (no --town); the webhook and 钉钉's secret are never shown back",
    )
    .addOption(new Option('--kind <kind>', 'robot').choices(ROBOT_KINDS).makeOptionMandatory())
    .option('--town <code>', "the town whose group it is; absent: the supervisors' group, the whole city")
    .option('--events <list>', `comma-separated, default all: ${NOTICE_EVENTS.join(',')}`)
    .option('--webhook <url>', 'the webhook URL (visible to other users of this machine: prefer --stdin)')
    .option(
      '--stdin',
      "read the webhook from the first line of standard input and 钉钉's 加签 secret, if any, from the second",
    )
    .action(
      async (name: string, o: { kind: string; town?: string; events?: string; webhook?: string; stdin?: boolean }) => {
        const [{ addChannel, ChannelBody }, { formatIssues }] = await Promise.all([
          import('../../store/notify.ts'),
          import('../../core/issues.ts'),
        ]);
        const lines = o.stdin ? await stdinLines() : [];
        const parsed = ChannelBody.safeParse({
          name,
          kind: o.kind,
          webhook: lines[0] ?? o.webhook ?? '',
          secret: lines[1] || undefined,
          town_code: o.town ?? null,
          events: o.events?.split(',').map((e) => e.trim()),
        });
        if (!parsed.success) throw new BadInputError('bad_field', `notify add: ${formatIssues(parsed.error.issues)}`);
        const c = await addChannel(await context().database(), 'cli', parsed.data);
        console.log(
          `channel ${c.id} ${c.name}: ${c.kind}, ${c.town_name ?? c.town_code ?? 'supervisors'}, ${c.webhook}`,
        );
      },
    );
  notify
    .command('list')
    .description('channels: whose group, events, the masked webhook, last success, last refusal, messages by state')
    .action(async () => {
      const c = context();
      const { listChannels } = await import('../../store/notify.ts');
      const rows = await listChannels(await c.database());
      if (rows.length === 0) console.log('no channels: add one with tuban notify add');
      for (const ch of rows) {
        const state = ch.enabled ? 'on' : 'off';
        console.log(
          `${ch.id}\t${ch.name}\t${ch.kind}\t${ch.town_code ?? 'supervisors'}\t${state}\t${ch.webhook}${ch.has_secret ? ' (signed)' : ''}`,
        );
        console.log(`\tevents: ${ch.events.join(', ')}`);
        console.log(
          `\tmessages: ${
            Object.entries(ch.messages)
              .map(([k, v]) => `${v} ${k}`)
              .join(', ') || 'none'
          }; last sent ${cityTime(ch.last_sent_at, c.config.TUBAN_UTC_OFFSET_H) ?? '-'}`,
        );
        if (ch.last_error)
          console.log(`\tLAST REFUSAL ${cityTime(ch.last_error_at, c.config.TUBAN_UTC_OFFSET_H)}: ${ch.last_error}`);
      }
    });
  for (const [cmd, enabled] of [
    ['off', false],
    ['on', true],
  ] as const)
    notify
      .command(`${cmd} <id>`)
      .description(enabled ? 'switch a channel back on' : 'switch a channel off (its unsent messages are cancelled)')
      .action(async (id: string) => {
        const { updateChannel } = await import('../../store/notify.ts');
        const ch = await updateChannel(await context().database(), rowId(id), { enabled });
        console.log(`channel ${ch.id} ${ch.name}: ${ch.enabled ? 'on' : 'off'}`);
      });
  notify
    .command('test <id>')
    .description('queue a test message to a channel (a worker sends it)')
    .action(async (id: string) => {
      const c = context();
      const [{ queueTest }, { workflowEnv }] = await Promise.all([
        import('../../store/notify.ts'),
        import('../../workflow/env.ts'),
      ]);
      const r = await queueTest(await c.database(), rowId(id), 'cli', workflowEnv(c.config).today());
      console.log(`test message ${r.key} queued`);
    });
  notify
    .command('outbox')
    .description('recent messages, newest first: state, tries, the last answer')
    .addOption(
      new Option('--status <s>', 'only this state').choices([
        'pending',
        'sending',
        'sent',
        'refused',
        'failed',
        'cancelled',
      ]),
    )
    .option('--limit <n>', 'how many', num('--limit'), 50)
    .action(async (o: { status?: string; limit: number }) => {
      const c = context();
      const { listOutbox } = await import('../../store/notify.ts');
      const rows = await listOutbox(await c.database(), { status: o.status, limit: o.limit });
      if (rows.length === 0) console.log('no messages');
      for (const m of rows)
        console.log(
          [
            m.id,
            cityTime(m.created_at, c.config.TUBAN_UTC_OFFSET_H),
            m.channel,
            m.event,
            `${m.patches} patch(es)`,
            m.status,
            `${m.attempts} tr${m.attempts === 1 ? 'y' : 'ies'}`,
            m.last_error ?? '',
          ].join('\t'),
        );
    });
}

function rowId(id: string): number {
  if (!/^\d{1,9}$/.test(id)) throw new BadInputError('bad_field', `channel id: ${JSON.stringify(id)} is not a number`);
  return Number(id);
}

/** The first two lines of standard input (a webhook, then a secret), without their line ends. */
async function stdinLines(): Promise<string[]> {
  if (process.stdin.isTTY) process.stderr.write('webhook, then 钉钉 secret (or an empty line):\n');
  let text = '';
  for await (const chunk of process.stdin) {
    text += chunk;
    if (text.split('\n').length > 2 || text.length > 8192) break;
  }
  return text
    .split(/\r?\n/)
    .slice(0, 2)
    .map((l) => l.trim());
}
