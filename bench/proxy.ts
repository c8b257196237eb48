// The bench counts the bytes each strategy sends to PostgreSQL through the same loopback proxy,
// so every strategy is measured the same way, whatever client library it uses.
import { tcpProxy, type TcpProxy } from '../harness/proxy.js';

export type CountingProxy = Pick<TcpProxy, 'url' | 'sent' | 'close'>;

/** A proxy to the server in `databaseUrl`; `url` is the same URL pointed at the proxy. */
export function countingProxy(databaseUrl: string): Promise<CountingProxy> {
  return tcpProxy(databaseUrl);
}
