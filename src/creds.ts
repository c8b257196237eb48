// What a Baileys creds.json and a key file must look like to be worth storing, and whose login it is.
import { createHash } from 'node:crypto';

export const CREDS_FILE = 'creds.json';

/** Fields every creds object written by Baileys' initAuthCreds() has, in Baileys 6 and 7. */
const REQUIRED_CREDS_FIELDS = ['noiseKey', 'signedIdentityKey', 'signedPreKey', 'advSecretKey'] as const;

export interface CredsSummary {
  /** The WhatsApp id the creds are paired with (creds.me.id), or null before a QR scan. */
  registeredJid: string | null;
  /**
   * Fingerprint (sha256 hex) of the public identity key (creds.signedIdentityKey.public, as Baileys serialises
   * it). Baileys makes it with the creds (initAuthCreds) and keeps it through the QR scan, so unpaired creds
   * and the login they become share it; a new pairing, even of the same number, makes a new one.
   */
  identityKey: string;
  /**
   * Which login this is (SPEC "What is backed up", the identity guard): sha256 hex of the paired phone number
   * and the identity key; null before a QR scan.
   */
  identity: string | null;
}

/** Parses creds.json text; returns null when it is not a complete Baileys creds object. */
export function parseCreds(text: string): CredsSummary | null {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (!isObject(value)) return null;
  for (const field of REQUIRED_CREDS_FIELDS) {
    if (!(field in value) || value[field] === null || value[field] === undefined) return null;
  }
  if (typeof value['registrationId'] !== 'number') return null;
  const me = value['me'];
  const registeredJid = isObject(me) && typeof me['id'] === 'string' && me['id'].length > 0 ? me['id'] : null;
  const publicKey = isObject(value['signedIdentityKey']) ? value['signedIdentityKey']['public'] : undefined;
  const identityKey = fingerprint([publicKey ?? null]);
  const identity = registeredJid === null ? null : fingerprint([phoneOf(registeredJid), publicKey ?? null]);
  return { registeredJid, identityKey, identity };
}

/**
 * Why a file's bytes look like a torn or foreign write, or null when they can be stored.
 * `*.json` must parse; creds.json must be a creds object. Other files are stored as they are.
 */
export function tornReason(name: string, content: Buffer): string | null {
  if (!name.endsWith('.json')) return null;
  if (content.length === 0) return 'the file is empty';
  const text = content.toString('utf8');
  if (name === CREDS_FILE) {
    return parseCreds(text) ? null : 'creds.json is not a complete Baileys creds object';
  }
  try {
    JSON.parse(text);
    return null;
  } catch {
    return 'the file is not valid JSON (truncated or half-written)';
  }
}

/** The phone number (user part) of a jid: 5511999999999:12@s.whatsapp.net → 5511999999999. */
export function phoneOf(jid: string): string {
  return jid.split('@')[0]?.split(':')[0] ?? '';
}

/** Masks a phone number or jid for output: 5511999999999:12@s.whatsapp.net → 5511*****9999. */
export function maskJid(jid: string): string {
  const user = phoneOf(jid);
  if (user.length <= 4) return '*'.repeat(user.length);
  const keep = user.length >= 12 ? 4 : 2;
  return `${user.slice(0, keep)}${'*'.repeat(user.length - 2 * keep)}${user.slice(-keep)}`;
}

function fingerprint(parts: unknown[]): string {
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
}

/**
 * Masks a jid to the last 4 digits of its number, for what leaves the process (webhook events, SPEC
 * "Session lifecycle"): 5511999999999:12@s.whatsapp.net → *********9999; 4 digits or fewer → all stars.
 */
export function maskJidLast4(jid: string): string {
  const user = phoneOf(jid);
  if (user.length <= 4) return '*'.repeat(user.length);
  return `${'*'.repeat(user.length - 4)}${user.slice(-4)}`;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
