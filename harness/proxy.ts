// A loopback TCP proxy in front of PostgreSQL. It counts the bytes clients send (the bench measures
// every strategy the same way through it) and can cut every connection at an instant a test picks
// by looking at what a client is about to send (the fault suite drops connections mid-transaction).
import net from 'node:net';

/** What to do with a chunk a client sends: pass it on, or cut every connection before or after it. */
export type ChunkVerdict = 'pass' | 'cut-before' | 'cut-after';

export interface TcpProxy {
  /** The database URL pointed at the proxy. */
  url: string;
  /** Bytes sent from clients to PostgreSQL since start. */
  sent(): number;
  /** Connections cut so far (by `cut()` or an inspector's verdict). */
  cuts(): number;
  /** Destroys every open connection at once, as a network failure or a failover would. */
  cut(): void;
  /** `true`: cuts every connection and refuses new ones (the database is unreachable) until called with `false`. */
  block(on: boolean): void;
  /**
   * `true`: holds every chunk clients send (new connections too) without cutting anything, as a database
   * that hangs (a stopped postmaster) does; `false` sends what was held and carries on.
   */
  stall(on: boolean): void;
  close(): Promise<void>;
}

/** A proxy to the server in `databaseUrl`; `inspect` sees each client chunk before it is forwarded. */
export async function tcpProxy(databaseUrl: string, inspect: (chunk: Buffer) => ChunkVerdict = () => 'pass'): Promise<TcpProxy> {
  const target = new URL(databaseUrl);
  let sent = 0;
  let cuts = 0;
  let blocked = false;
  let stalled = false;
  const pairs = new Set<{ client: net.Socket; upstream: net.Socket; held: Buffer[] }>();
  const cut = () => {
    if (pairs.size > 0) cuts++;
    for (const { client, upstream } of pairs) {
      client.destroy();
      upstream.destroy();
    }
    pairs.clear();
  };
  const server = net.createServer((client) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const upstream = net.connect({ host: target.hostname, port: Number(target.port || 5432) });
    const pair = { client, upstream, held: [] as Buffer[] };
    pairs.add(pair);
    client.on('data', (chunk) => {
      if (stalled) return void pair.held.push(chunk);
      const verdict = inspect(chunk);
      if (verdict === 'cut-before') return cut();
      sent += chunk.length;
      // A cut right after the write leaves the server to act on it (a COMMIT that happens) while the
      // client never hears back: the ambiguous outcome a client must survive.
      upstream.write(chunk, verdict === 'cut-after' ? () => cut() : undefined);
    });
    upstream.on('data', (chunk) => client.write(chunk));
    const end = () => {
      client.destroy();
      upstream.destroy();
      pairs.delete(pair);
    };
    client.on('close', end).on('error', end);
    upstream.on('close', end).on('error', end);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = new URL(databaseUrl);
  url.hostname = '127.0.0.1';
  url.port = String((server.address() as net.AddressInfo).port);
  return {
    url: url.toString(),
    sent: () => sent,
    cuts: () => cuts,
    cut,
    block: (on) => {
      blocked = on;
      if (on) cut();
    },
    stall: (on) => {
      stalled = on;
      if (on) return;
      for (const pair of pairs) for (const chunk of pair.held.splice(0)) pair.upstream.write(chunk);
    },
    close: () =>
      new Promise<void>((resolve) => {
        cut();
        server.close(() => resolve());
      }),
  };
}
