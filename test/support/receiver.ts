// A real HTTP receiver on loopback for the notification tests (webhook, heartbeat): it records every
// request with its raw body, and answers each with the next scripted answer (200 when none is left).
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after } from 'node:test';

export interface Received {
  method: string;
  /** Path and query as requested. */
  url: string;
  headers: http.IncomingHttpHeaders;
  /** The body's exact bytes. */
  body: Buffer;
}

/** A status to answer with (and headers), or `hang`: never answer (until the receiver stops). */
export type Answer = number | { status: number; headers: Record<string, string> } | 'hang';

export class Receiver {
  readonly requests: Received[] = [];
  /** Answers for the next requests, in order; 200 once they are used up. */
  readonly answers: Answer[] = [];
  /** Requests answered so far (hanging ones are not, until answerHanging()). */
  answered = 0;
  /** Requests left hanging, in order of arrival. */
  private readonly hanging: http.ServerResponse[] = [];
  private readonly server: http.Server;
  private waiters: (() => void)[] = [];
  private boundPort = 0;

  private constructor() {
    this.server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        this.requests.push({ method: request.method ?? '', url: request.url ?? '', headers: request.headers, body: Buffer.concat(chunks) });
        const answer = this.answers.shift() ?? 200;
        if (answer === 'hang') this.hanging.push(response);
        else {
          this.answered++;
          if (typeof answer === 'number') response.writeHead(answer).end();
          else response.writeHead(answer.status, answer.headers).end();
        }
        for (const wake of this.waiters.splice(0)) wake();
      });
    });
  }

  /** A receiver listening on 127.0.0.1:`port` (default: any free port), stopped after the calling file's tests. */
  static async start(port = 0): Promise<Receiver> {
    const receiver = new Receiver();
    await new Promise<void>((resolve, reject) => {
      receiver.server.once('error', reject);
      receiver.server.listen(port, '127.0.0.1', resolve);
    });
    receiver.boundPort = (receiver.server.address() as AddressInfo).port;
    after(() => receiver.stop());
    return receiver;
  }

  /** The port it listens (or listened) on. */
  get port(): number {
    return this.boundPort;
  }

  /** `http://127.0.0.1:port` + `path`. */
  url(path = '/hook'): string {
    return `http://127.0.0.1:${this.port}${path}`;
  }

  /** Resolves once `count` requests have arrived in all (real time; fails after 5 s). */
  async received(count: number): Promise<Received[]> {
    const deadline = Date.now() + 5_000;
    while (this.requests.length < count) {
      if (Date.now() > deadline) throw new Error(`expected ${count} requests, got ${this.requests.length} within 5 s`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
    return this.requests;
  }

  /** Answers the oldest request left hanging with `status`. */
  answerHanging(status = 200): void {
    const response = this.hanging.shift();
    if (!response) throw new Error('no request is hanging');
    this.answered++;
    response.writeHead(status).end();
  }

  /** Stops listening and drops every connection (hanging ones included); the port is free afterwards. */
  async stop(): Promise<void> {
    for (const response of this.hanging.splice(0)) response.destroy();
    if (!this.server.listening) return;
    const closed = new Promise((resolve) => this.server.close(resolve));
    this.server.closeAllConnections();
    await closed;
  }
}
