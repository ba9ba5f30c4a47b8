import { createHash, randomBytes, scrypt, scryptSync, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import type { Knex } from 'knex';
import { BadInputError, ConflictError, NotFoundError } from '../pipeline/errors.ts';
import { ROLES, type Role } from '../workflow/lifecycle.ts';

const scryptAsync = promisify(scrypt);

export interface User {
  id: number;
  username: string;
  displayName: string;
  role: Role;
  townCode: string | null;
}

const tokenHash = (token: string) => createHash('sha256').update(token).digest('hex');

/** scrypt with a per-user salt: `scrypt$<salt hex>$<hash hex>`. */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt$${salt.toString('hex')}$${scryptSync(password, salt, 32).toString('hex')}`;
}

/** Verifies a password against its stored scrypt hash, off the event loop. */
export async function checkPassword(password: string, stored: string | null): Promise<boolean> {
  if (!stored) return false;
  const [scheme, salt, hash] = stored.split('$');
  if (scheme !== 'scrypt' || !salt || !hash) return false;
  const want = Buffer.from(hash, 'hex');
  if (want.length !== 32) return false; // a damaged stored hash is a failed login, not an error
  const got = (await scryptAsync(password, Buffer.from(salt, 'hex'), 32)) as Buffer;
  return timingSafeEqual(got, want);
}

function toUser(r: Record<string, unknown>): User {
  return { id: Number(r.id), username: String(r.username), displayName: String(r.display_name), role: r.role as Role, townCode: (r.town_code as string) ?? null };
}

export async function createUser(db: Knex, u: { username: string; displayName?: string; role: string; townCode?: string | null; password?: string }): Promise<User> {
  if (!/^[A-Za-z0-9_.-]{2,64}$/.test(u.username)) throw new BadInputError('bad_field', `username "${u.username}" must be 2–64 letters, digits, _ . -`);
  if (!(ROLES as readonly string[]).includes(u.role)) throw new BadInputError('bad_field', `role "${u.role}" is not one of ${ROLES.join(', ')}`);
  if (u.role === 'town') {
    if (!u.townCode) throw new BadInputError('bad_field', 'a town user needs a town code');
    const town = await db('reference_feature').where({ kind: 'town', code: u.townCode }).first();
    if (!town) throw new BadInputError('bad_field', `town ${u.townCode} is not in the town layer; import it first (tuban layers import … --kind town)`);
  } else if (u.townCode) throw new BadInputError('bad_field', `only town users have a town; ${u.role} sees all towns`);
  if (u.password !== undefined && u.password.length < 8) throw new BadInputError('bad_field', 'password must have at least 8 characters');
  const existing = await db('app_user').where({ username: u.username }).first();
  if (existing) throw new ConflictError(`user ${u.username} already exists`);
  const [row] = await db('app_user').insert({ username: u.username, display_name: u.displayName ?? u.username, role: u.role, town_code: u.role === 'town' ? u.townCode : null, password_hash: u.password ? hashPassword(u.password) : null }).returning('*');
  return toUser(row);
}

/** Issue a new API token for a user. The token is returned once; only its hash is stored. */
export async function issueToken(db: Knex, username: string, label = ''): Promise<{ token: string; user: User }> {
  const row = await db('app_user').where({ username, disabled: false }).first();
  if (!row) throw new NotFoundError(`user ${username} does not exist or is disabled`);
  const token = `tb_${randomBytes(24).toString('base64url')}`;
  await db('api_token').insert({ user_id: row.id, token_hash: tokenHash(token), label });
  return { token, user: toUser(row) };
}

export async function login(db: Knex, username: string, password: string): Promise<{ token: string; user: User } | null> {
  const row = await db('app_user').where({ username, disabled: false }).first();
  if (!row || !(await checkPassword(password, row.password_hash))) return null;
  return issueToken(db, username, 'login');
}

export async function userForToken(db: Knex, token: string): Promise<User | null> {
  const row = await db('api_token as t').join('app_user as u', 'u.id', 't.user_id')
    .where({ 't.token_hash': tokenHash(token), 'u.disabled': false }).whereNull('t.revoked_at').first('u.*', 't.id as token_id');
  if (!row) return null;
  // at most one write a minute per token: a map view makes hundreds of requests
  await db('api_token').where({ id: row.token_id }).where((q) => q.whereNull('last_used_at').orWhere('last_used_at', '<', db.raw("now() - interval '1 minute'"))).update({ last_used_at: db.fn.now() });
  return toUser(row);
}

export async function listUsers(db: Knex): Promise<User[]> {
  return (await db('app_user').orderBy('username')).map(toUser);
}
