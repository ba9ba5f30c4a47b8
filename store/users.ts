import { say, type Said } from '../i18n/say.ts';
import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Db } from './db.ts';
import type { UserBody } from '../api/responses.ts';
import { BadInputError, ConflictError, NotFoundError } from '../core/errors.ts';
import { ROLES, type Role } from '../workflow/lifecycle.ts';

const scryptAsync = promisify(scrypt);

/** A signed-in user as the store and the workflow use it: the API's user (api/responses.ts) without the town's name. */
export type User = Pick<UserBody, 'id' | 'username' | 'displayName' | 'role' | 'townCode'>;

const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

/** Days a token lives unless TUBAN_TOKEN_DAYS says otherwise. */
const DEFAULT_TOKEN_DAYS = 30;
const MIN_PASSWORD_CHARS = 10;

/** Why a password is refused, or null: at least 10 characters, not only spaces, not the user name. */
function passwordProblem(username: string, password: string): Said | null {
  if (Array.from(password).length < MIN_PASSWORD_CHARS) return say('password_too_short', { min: MIN_PASSWORD_CHARS });
  if (password.trim() === '') return say('password_blank');
  if (password.trim().toLowerCase() === username.toLowerCase()) return say('password_is_username');
  return null;
}

/** scrypt with a per-user salt: `scrypt$<salt hex>$<hash hex>`. */
function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('hex')}$${scryptSync(password, salt, 32).toString('hex')}`;
}

/** Verifies a password against its stored scrypt hash, off the event loop. */
async function checkPassword(password: string, stored: string | null): Promise<boolean> {
  if (!stored) return false;
  const [scheme, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const want = Buffer.from(hash, 'hex');
  if (want.length !== 32) return false; // a damaged stored hash is a failed login, not an error
  const got = (await scryptAsync(password, Buffer.from(salt, 'hex'), 32)) as Buffer;
  return timingSafeEqual(got, want);
}

function toUser(r: Record<string, unknown>): User {
  return {
    id: Number(r.id),
    username: String(r.username),
    displayName: String(r.display_name),
    role: r.role as Role,
    townCode: (r.town_code as string) ?? null,
  };
}

export async function createUser(
  db: Db,
  u: { username: string; displayName?: string; role: string; townCode?: string | null; password?: string },
): Promise<User> {
  if (!/^[A-Za-z0-9_.-]{2,64}$/.test(u.username))
    throw new BadInputError('bad_field', say('username_invalid', { username: u.username }));
  if (u.displayName !== undefined && Array.from(u.displayName).length > 100)
    throw new BadInputError('bad_field', say('display_name_long', { max: 100 }), { field: 'display_name' });
  if (!(ROLES as readonly string[]).includes(u.role))
    throw new BadInputError('bad_field', say('role_invalid', { role: u.role, roles: ROLES }));
  if (u.role === 'town') {
    if (!u.townCode) throw new BadInputError('bad_field', say('town_user_needs_town'));
    const town = await db('reference_feature').where({ kind: 'town', code: u.townCode }).first();
    if (!town) throw new BadInputError('bad_field', say('town_unknown', { town: u.townCode }));
  } else if (u.townCode) throw new BadInputError('bad_field', say('town_only_for_town_users', { role: u.role }));
  if (u.password !== undefined) {
    const problem = passwordProblem(u.username, u.password);
    if (problem) throw new BadInputError('bad_field', problem, { field: 'password' });
  }
  const existing = await db('app_user').where({ username: u.username }).first();
  if (existing) throw new ConflictError(say('user_exists', { username: u.username }));
  const [row] = await db('app_user')
    .insert({
      username: u.username,
      display_name: u.displayName ?? u.username,
      role: u.role,
      town_code: u.role === 'town' ? u.townCode : null,
      password_hash: u.password ? hashPassword(u.password) : null,
    })
    .returning('*');
  return toUser(row);
}

/**
 * Issue a new API token for a user, valid for `days`. The token is returned once; only its hash
 * is stored.
 */
export async function issueToken(
  db: Db,
  username: string,
  label = '',
  days = DEFAULT_TOKEN_DAYS,
): Promise<{ token: string; user: User; expiresAt: string }> {
  const row = await db('app_user').where({ username, disabled: false }).first();
  if (!row) throw new NotFoundError(say('user_unknown_or_disabled', { username }));
  const token = `tb_${randomBytes(24).toString('base64url')}`;
  const [t] = await db('api_token')
    .insert({
      user_id: row.id,
      token_hash: tokenHash(token),
      label,
      expires_at: db.raw(`now() + make_interval(days => ?)`, [days]),
    })
    .returning('expires_at');
  return { token, user: toUser(row), expiresAt: new Date(t.expires_at).toISOString() };
}

/** A hash to check against when the user is unknown, so that a login takes as long either way. */
let decoyHash: string | null = null;

export async function login(
  db: Db,
  username: string,
  password: string,
  days = DEFAULT_TOKEN_DAYS,
): Promise<{ token: string; user: User; expiresAt: string } | null> {
  const row = await db('app_user').where({ username, disabled: false }).first();
  if (!row?.password_hash) {
    decoyHash ??= hashPassword(randomBytes(16).toString('hex'));
    await checkPassword(password, decoyHash);
    return null;
  }
  if (!(await checkPassword(password, row.password_hash))) return null;
  return issueToken(db, username, 'login', days);
}

/** A user by name, enabled, or a bad-input error naming them (the CLI acts as a named user). */
export async function userByName(db: Db, username: string): Promise<User> {
  const r = await db('app_user').where({ username }).first();
  if (!r || r.disabled)
    throw new BadInputError('bad_user', say('user_unknown_or_disabled', { username }), { username });
  return toUser(r);
}

export async function userForToken(db: Db, token: string): Promise<User | null> {
  const row = await db('api_token as t')
    .join('app_user as u', 'u.id', 't.user_id')
    .where({ 't.token_hash': tokenHash(token), 'u.disabled': false })
    .whereNull('t.revoked_at')
    .andWhere('t.expires_at', '>', db.fn.now())
    .first('u.*', 't.id as token_id');
  if (!row) return null;
  // at most one write a minute per token: a map view makes hundreds of requests
  await db('api_token')
    .where({ id: row.token_id })
    .where((q) => void q.whereNull('last_used_at').orWhere('last_used_at', '<', db.raw("now() - interval '1 minute'")))
    .update({ last_used_at: db.fn.now() });
  return toUser(row);
}

export type UserSummary = User & {
  disabled: boolean;
  /** Tokens neither revoked nor expired. */
  activeTokens: number;
  lastUsedAt: string | null;
};

export async function listUsers(db: Db): Promise<UserSummary[]> {
  const rows = await db('app_user as u')
    .leftJoin('api_token as t', (j) =>
      j.on('t.user_id', 'u.id').andOnNull('t.revoked_at').andOn('t.expires_at', '>', db.raw('now()')),
    )
    .groupBy('u.id')
    .orderBy('u.username')
    .select('u.*', db.raw('count(t.id)::int as active_tokens'), db.raw('max(t.last_used_at) as last_used_at'));
  return rows.map((r) => ({
    ...toUser(r),
    disabled: Boolean(r.disabled),
    activeTokens: Number(r.active_tokens),
    lastUsedAt: r.last_used_at ? new Date(r.last_used_at).toISOString() : null,
  }));
}

async function userRow(db: Db, username: string): Promise<Record<string, unknown>> {
  const row = await db('app_user').where({ username }).first();
  if (!row) throw new NotFoundError(say('user_unknown', { username }));
  return row;
}

/** Revokes one token (a logout). */
export async function revokeToken(db: Db, token: string): Promise<void> {
  await db('api_token')
    .where({ token_hash: tokenHash(token) })
    .whereNull('revoked_at')
    .update({ revoked_at: db.fn.now() });
}

/** Revokes every live token of a user (all their sessions end); returns how many. */
export async function revokeTokens(db: Db, username: string): Promise<number> {
  const row = await userRow(db, username);
  return db('api_token')
    .where({ user_id: row.id })
    .whereNull('revoked_at')
    .andWhere('expires_at', '>', db.fn.now())
    .update({ revoked_at: db.fn.now() });
}

/** Disables a user (their tokens are revoked and no login works) or enables them again. */
export async function setDisabled(
  db: Db,
  username: string,
  disabled: boolean,
): Promise<{ user: User; revoked: number }> {
  const row = await userRow(db, username);
  await db('app_user').where({ id: row.id }).update({ disabled });
  const revoked = disabled ? await revokeTokens(db, username) : 0;
  return { user: toUser(row), revoked };
}

/** Sets a user's password (the policy applies) and revokes their tokens, so old sessions end. */
export async function setPassword(
  db: Db,
  username: string,
  password: string,
): Promise<{ user: User; revoked: number }> {
  const row = await userRow(db, username);
  const problem = passwordProblem(username, password);
  if (problem) throw new BadInputError('bad_field', problem, { field: 'password' });
  await db('app_user')
    .where({ id: row.id })
    .update({ password_hash: hashPassword(password) });
  return { user: toUser(row), revoked: await revokeTokens(db, username) };
}
