import { Command, Option } from 'commander';
import { BadInputError } from '../../core/errors.ts';
import { createUser, issueToken, listUsers, revokeTokens, setDisabled, setPassword } from '../../store/users.ts';
import { ROLES } from '../../workflow/lifecycle.ts';
import { context } from '../options.ts';
import { cityTime } from '../../core/time.ts';

/** `tuban` commands: users and API tokens. */
export function usersCommands(program: Command): void {
  const users = program.command('users').description('users and API tokens');
  users
    .command('add <username>')
    .description('create a user')
    .addOption(new Option('--role <role>', 'role').choices(ROLES).makeOptionMandatory())
    .option('--town <code>', 'town code (town users only)')
    .option('--name <display>', 'display name')
    .option(
      '--password <pw>',
      'password for POST /api/login, at least 10 characters (visible to other users of this machine: prefer --password-stdin)',
    )
    .option('--password-stdin', 'read the password from the first line of standard input')
    .action(
      async (
        username: string,
        o: { role: string; town?: string; name?: string; password?: string; passwordStdin?: boolean },
      ) => {
        const password = o.passwordStdin ? await firstLineOfStdin('--password-stdin') : o.password;
        const u = await createUser(await context().database(), {
          username,
          role: o.role,
          townCode: o.town,
          displayName: o.name,
          password,
        });
        console.log(`user ${u.username} (${u.role}${u.townCode ? `, town ${u.townCode}` : ''}) created`);
      },
    );
  users
    .command('token <username>')
    .description('issue a new API token (printed once; it expires after TUBAN_TOKEN_DAYS)')
    .action(async (username: string) => {
      const c = context();
      const r = await issueToken(await c.database(), username, 'cli', c.config.TUBAN_TOKEN_DAYS);
      console.error(`token for ${r.user.username}, valid until ${cityTime(r.expiresAt, c.config.TUBAN_UTC_OFFSET_H)}`);
      console.log(r.token);
    });
  users
    .command('list')
    .description('users, their roles and towns, whether disabled, live tokens and last use')
    .action(async () => {
      const c = context();
      const rows = await listUsers(await c.database());
      console.log(['user', 'role', 'town', 'state', 'live tokens', 'last used'].join('\t'));
      for (const u of rows)
        console.log(
          [
            u.username,
            u.role,
            u.townCode ?? '-',
            u.disabled ? 'disabled' : 'active',
            u.activeTokens,
            cityTime(u.lastUsedAt, c.config.TUBAN_UTC_OFFSET_H) ?? '-',
          ].join('\t'),
        );
    });
  users
    .command('revoke <username>')
    .description('revoke every token of a user (ends all their sessions)')
    .action(async (username: string) => {
      console.log(`${username}: ${await revokeTokens(await context().database(), username)} token(s) revoked`);
    });
  users
    .command('disable <username>')
    .description('disable a user: no login, every token revoked')
    .action(async (username: string) => {
      const r = await setDisabled(await context().database(), username, true);
      console.log(`${username}: disabled, ${r.revoked} token(s) revoked`);
    });
  users
    .command('enable <username>')
    .description('let a disabled user log in again')
    .action(async (username: string) => {
      await setDisabled(await context().database(), username, false);
      console.log(`${username}: enabled`);
    });
  users
    .command('passwd <username>')
    .description(
      "set a user's password from the first line of standard input (at least 10 characters, not the user name); revokes their tokens",
    )
    .action(async (username: string) => {
      const r = await setPassword(await context().database(), username, await firstLineOfStdin('passwd'));
      console.log(`${username}: password set, ${r.revoked} token(s) revoked`);
    });

  /** The first line of standard input, without its line end (a password piped in, or typed). */
  async function firstLineOfStdin(what: string): Promise<string> {
    if (process.stdin.isTTY) process.stderr.write('password: ');
    let text = '';
    for await (const chunk of process.stdin) {
      text += chunk;
      if (text.includes('\n') || text.length > 4096) break;
    }
    const line = text.split(/\r?\n/)[0];
    if (!line) throw new BadInputError('bad_field', `${what}: no password on standard input`, { field: 'password' });
    return line;
  }
}
