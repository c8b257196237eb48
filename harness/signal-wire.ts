// What the conversation harness and the chat-bot process exchange: Signal bundles and ciphertexts as
// JSON (bytes as base64), in the shapes Baileys' repository takes.
import type { SignalRepository } from '@whiskeysockets/baileys';

export type E2ESession = Parameters<SignalRepository['injectE2ESession']>[0]['session'];

/** A pre-key bundle on the wire (what the server serves, or a retry receipt carries). */
export interface WireBundle {
  registrationId: number;
  identityKey: string;
  signedPreKey: { keyId: number; publicKey: string; signature: string };
  preKey?: { keyId: number; publicKey: string };
}

/** One 1:1 ciphertext: a pkmsg (starts a session) or a msg. */
export interface WireEnc {
  type: 'pkmsg' | 'msg';
  ciphertext: string;
}

export const b64 = (bytes: Uint8Array): string => Buffer.from(bytes).toString('base64');
export const fromB64 = (text: string): Buffer => Buffer.from(text, 'base64');

/** The bundle as injectE2ESession takes it. */
export function toSession(wire: WireBundle): E2ESession {
  return {
    registrationId: wire.registrationId,
    identityKey: fromB64(wire.identityKey),
    signedPreKey: {
      keyId: wire.signedPreKey.keyId,
      publicKey: fromB64(wire.signedPreKey.publicKey),
      signature: fromB64(wire.signedPreKey.signature),
    },
    ...(wire.preKey ? { preKey: { keyId: wire.preKey.keyId, publicKey: fromB64(wire.preKey.publicKey) } } : {}),
  };
}

/** A bundle from injectE2ESession's shape to the wire. */
export function toWire(session: E2ESession): WireBundle {
  return {
    registrationId: session.registrationId,
    identityKey: b64(session.identityKey),
    signedPreKey: {
      keyId: session.signedPreKey.keyId,
      publicKey: b64(session.signedPreKey.publicKey),
      signature: b64(session.signedPreKey.signature),
    },
    ...(session.preKey ? { preKey: { keyId: session.preKey.keyId, publicKey: b64(session.preKey.publicKey) } } : {}),
  };
}
