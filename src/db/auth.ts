// How the keeper's connections authenticate, beyond what node-postgres offers as options:
// - channel_binding=require as libpq enforces it: the only authentication accepted is SCRAM-SHA-256-PLUS
//   over TLS, so a server (or a man in the middle) that asks for a cleartext or MD5 password, offers SCRAM
//   without channel binding, or lets us in without authenticating at all is refused before the password
//   leaves the process;
// - a connection refused during authentication on our side (no password configured, channel binding)
//   is closed at once; pg would leave the socket open until the server's authentication_timeout.
// pg's Client is extended at the points where each authentication request arrives.
import { TLSSocket } from 'node:tls';
import pg from 'pg';

/** The code of the error a refused authentication fails with (not retried: waiting does not change it). */
export const CHANNEL_BINDING_REFUSED = 'KEEPER_CHANNEL_BINDING_REQUIRED';

/** The Client members this module builds on; checked at startup so a pg upgrade cannot drop the check unnoticed. */
interface ClientInternals {
  connection: { stream: unknown; emit(event: 'error', error: Error): void; on(event: string, listener: (...args: never[]) => void): void };
  _attachListeners(connection: unknown): void;
  _handleAuthCleartextPassword(message: unknown): void;
  _handleAuthMD5Password(message: unknown): void;
  _handleAuthSASL(message: { mechanisms: string[] }): void;
  _handleAuthSASLFinal(message: unknown): void;
  _handleErrorWhileConnecting(error: Error): void;
  saslSession: { mechanism: string } | null;
}
const HOOKS = [
  '_attachListeners',
  '_handleAuthCleartextPassword',
  '_handleAuthMD5Password',
  '_handleAuthSASL',
  '_handleAuthSASLFinal',
  '_handleErrorWhileConnecting',
] as const;

/** True when this pg version has every hook this module needs (checked so a pg upgrade cannot drop a check unnoticed). */
export function hasClientHooks(): boolean {
  const prototype = pg.Client.prototype as unknown as Record<string, unknown>;
  return HOOKS.every((name) => typeof prototype[name] === 'function');
}

/**
 * A pg Client class that closes a connection that failed to authenticate; with requireChannelBinding,
 * one that accepts only SCRAM-SHA-256-PLUS over TLS.
 */
export function keeperClient(requireChannelBinding: boolean): typeof pg.Client {
  const Base = pg.Client as unknown as new (config: pg.ClientConfig) => ClientInternals;
  class KeeperClient extends Base {
    private bound = false;

    override _handleErrorWhileConnecting(error: Error): void {
      super._handleErrorWhileConnecting(error);
      (this.connection.stream as { destroy(): void }).destroy();
    }

    private refuse(what: string): void {
      const error = Object.assign(
        new Error(
          `channel_binding=require, but ${what}; nothing was sent. Connect over TLS to ` +
            `a server that uses scram-sha-256 authentication, or set channel_binding=prefer`,
        ),
        { code: CHANNEL_BINDING_REFUSED },
      );
      this.connection.emit('error', error);
    }

    override _attachListeners(connection: unknown): void {
      super._attachListeners(connection);
      if (!requireChannelBinding) return;
      this.connection.on('authenticationOk', () => {
        if (!this.bound) this.refuse('the server let us in without channel binding (trust authentication, or not SCRAM-SHA-256-PLUS)');
      });
    }

    override _handleAuthCleartextPassword(message: unknown): void {
      if (requireChannelBinding) this.refuse('the server asked for the password in cleartext');
      else super._handleAuthCleartextPassword(message);
    }

    override _handleAuthMD5Password(message: unknown): void {
      if (requireChannelBinding) this.refuse('the server asked for an MD5 password');
      else super._handleAuthMD5Password(message);
    }

    override _handleAuthSASL(message: { mechanisms: string[] }): void {
      if (!requireChannelBinding) super._handleAuthSASL(message);
      else if (!(this.connection.stream instanceof TLSSocket)) this.refuse('the connection is not encrypted (the server has no TLS)');
      else if (!message.mechanisms.includes('SCRAM-SHA-256-PLUS')) {
        this.refuse(`the server offers only ${message.mechanisms.join(', ')} (no channel binding; a proxy such as PgBouncer does this)`);
      } else super._handleAuthSASL(message);
    }

    override _handleAuthSASLFinal(message: unknown): void {
      // The final message carries the server's proof, which covers the TLS channel; super checks it and
      // clears the session only when it holds.
      const mechanism = this.saslSession?.mechanism;
      super._handleAuthSASLFinal(message);
      this.bound = mechanism === 'SCRAM-SHA-256-PLUS' && this.saslSession === null;
    }
  }
  return KeeperClient as unknown as typeof pg.Client;
}
