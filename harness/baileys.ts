// Auth directories written and read by the real Baileys useMultiFileAuthState, as bots do: Baileys 7
// (what new bots install) by default, Baileys 6.7 (the npm package `baileys-6`, an alias) on request.
import { randomBytes, randomInt } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import * as baileys7 from '@whiskeysockets/baileys';

const { initAuthCreds } = baileys7;

export const REGISTERED_JID = '5511987654321:7@s.whatsapp.net';

/** The part of Baileys a bot uses to keep its login on disk. */
export type Baileys = Pick<typeof baileys7, 'useMultiFileAuthState' | 'Curve' | 'BufferJSON'>;

export const BAILEYS_7: Baileys = baileys7;

/**
 * Baileys 6.7, loaded only by the tests that use it (a second copy of Baileys in every test process
 * would cost each of them its start-up time). It is typed through Baileys 7's declarations: the
 * functions are the same (same file layout, same BufferJSON), their declared types are not identical.
 */
export async function loadBaileys6(): Promise<Baileys> {
  return (await import('baileys-6')) as unknown as Baileys;
}

export type AuthState = Awaited<ReturnType<typeof baileys7.useMultiFileAuthState>>;

export interface SessionShape {
  preKeys?: number;
  sessions?: number;
  senderKeys?: number;
  appStateKeys?: number;
  registered?: boolean;
}

/** Opens `dir` with Baileys' own writer (creating fresh creds when it has none). */
export function openAuth(dir: string, baileys: Baileys = BAILEYS_7): Promise<AuthState> {
  return baileys.useMultiFileAuthState(dir);
}

/** Marks the creds as paired (what a QR scan does) and saves them. */
export async function register(auth: AuthState, jid = REGISTERED_JID): Promise<void> {
  auth.state.creds.me = { id: jid, name: 'Keeper Test' };
  auth.state.creds.registered = true;
  await auth.saveCreds();
}

/** Writes creds and keys of every kind a bot keeps, through Baileys' keys.set. */
export async function writeSession(dir: string, shape: SessionShape = {}, baileys: Baileys = BAILEYS_7): Promise<AuthState> {
  const auth = await openAuth(dir, baileys);
  if (shape.registered ?? true) await register(auth);
  else await auth.saveCreds();
  const preKeys = shape.preKeys ?? 20;
  const data: Record<string, Record<string, unknown>> = {
    'pre-key': {},
    session: {},
    'sender-key': {},
    'app-state-sync-key': {},
  };
  for (let i = 1; i <= preKeys; i++) data['pre-key']![String(i)] = baileys.Curve.generateKeyPair();
  for (let i = 0; i < (shape.sessions ?? 5); i++) data['session']![`5511${randomInt(1e8, 1e9)}.0`] = sessionRecord();
  for (let i = 0; i < (shape.senderKeys ?? 3); i++)
    data['sender-key']![`1203630${randomInt(1e8, 1e9)}@g.us--5511${randomInt(1e8, 1e9)}--0`] = senderKeyRecord();
  for (let i = 0; i < (shape.appStateKeys ?? 2); i++) data['app-state-sync-key']![randomBytes(6).toString('base64')] = appStateKey();
  await auth.state.keys.set(data as never);
  return auth;
}

export function sessionRecord(): Buffer {
  return randomBytes(randomInt(400, 2000));
}

export function senderKeyRecord(): Buffer {
  return randomBytes(randomInt(100, 600));
}

export function appStateKey(): Record<string, unknown> {
  return {
    keyData: randomBytes(32),
    fingerprint: { rawId: randomInt(1, 1e6), currentIndex: 1, deviceIndexes: [0, 1] },
    timestamp: Date.now(),
  };
}

/** Everything Baileys would load from `dir`: creds plus every key named in it, in Baileys' own form. */
export async function loadEverything(
  dir: string,
  baileys: Baileys = BAILEYS_7,
): Promise<{ creds: unknown; keys: Record<string, Record<string, unknown>> }> {
  const auth = await openAuth(dir, baileys);
  const keys: Record<string, Record<string, unknown>> = {};
  for (const file of await readdir(dir)) {
    const match = /^(pre-key|session|sender-key|app-state-sync-key)-(.+)\.json$/.exec(file);
    if (!match) continue;
    const [, type, id] = match as unknown as [string, string, string];
    const got = await auth.state.keys.get(type as never, [id]);
    keys[type] ??= {};
    keys[type]![id] = normalise((got as Record<string, unknown>)[id], baileys);
  }
  return { creds: normalise(auth.state.creds, baileys), keys };
}

/** A comparable plain form (protobuf objects and Buffers through BufferJSON). */
export function normalise(value: unknown, baileys: Baileys = BAILEYS_7): unknown {
  return JSON.parse(JSON.stringify(value, baileys.BufferJSON.replacer));
}

export { initAuthCreds };
