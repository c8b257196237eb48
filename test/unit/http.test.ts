// The HTTP server survives slow and never-finished requests, and keeps answering others.
import assert from 'node:assert/strict';
import net from 'node:net';
import { describe, it } from 'node:test';
import { connectionCap, MAX_CONNECTIONS, openFilesLimit, RESERVED_DESCRIPTORS, sendJson, startHttpServer } from '../../src/http.js';
import { testLog } from '../support/log.js';

/** Opens a raw connection, writes `text`, and resolves with what the server sent before closing. */
function rawExchange(port: number, text: string): Promise<{ answer: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port }, () => socket.write(text));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString()));
    socket.on('close', () => resolve({ answer, ms: Date.now() - started }));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('the server never closed the connection')));
  });
}

describe('http server limits', () => {
  it('answers 408 to requests whose headers or body never finish, and keeps serving', async () => {
    const server = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      [
        {
          method: 'POST',
          path: '/echo',
          handler: async (req, res) => {
            for await (const chunk of req) void chunk; // read the whole body, as the API does
            sendJson(res, 200, { ok: true });
          },
        },
        { method: 'GET', path: '/ok', handler: (_req, res) => sendJson(res, 200, { ok: true }) },
      ],
      testLog,
      {
        headersMs: 300,
        requestMs: 600,
      },
    );
    try {
      const [slowHeaders, slowBody] = await Promise.all([
        rawExchange(server.port, 'GET /ok HTTP/1.1\r\nHost: x\r\n'),
        rawExchange(server.port, 'POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"partial":'),
      ]);
      assert.match(slowHeaders.answer, /^HTTP\/1\.1 408/);
      assert.match(slowBody.answer, /^HTTP\/1\.1 408/);
      assert.ok(slowHeaders.ms < 5000 && slowBody.ms < 5000);
      const fine = await fetch(`http://127.0.0.1:${server.port}/ok`);
      assert.equal(fine.status, 200);
    } finally {
      await server.close();
    }
  });

  it('answers 400 to garbage and to request targets that are not URLs, and says so when the port is taken', async () => {
    const server = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      [{ method: 'GET', path: '/ok', handler: (_req, res) => sendJson(res, 200, { ok: true }) }],
      testLog,
    );
    try {
      const garbage = await rawExchange(server.port, '\x00\x01\x02 not http\r\n\r\n');
      assert.match(garbage.answer, /^HTTP\/1\.1 400/);
      for (const target of ['//[', 'http://[/', 'http://a:99999/']) {
        const odd = await rawExchange(server.port, `GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
        assert.match(odd.answer, /^HTTP\/1\.1 400/, target);
      }
      assert.equal((await fetch(`http://127.0.0.1:${server.port}/ok`)).status, 200, 'still serving');
      await assert.rejects(
        startHttpServer({ host: '127.0.0.1', port: server.port }, [], testLog),
        /cannot listen on 127\.0\.0\.1:\d+ \(EADDRINUSE\): choose another --listen/,
      );
    } finally {
      await server.close();
    }
  });

  it('answers every request the parser refuses with a JSON {error} body: 408, 431 and 400', async () => {
    const server = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      [{ method: 'GET', path: '/ok', handler: (_req, res) => sendJson(res, 200, { ok: true }) }],
      testLog,
      { headersMs: 300, requestMs: 600 },
    );
    try {
      const answers = await Promise.all([
        rawExchange(server.port, 'GET /ok HTTP/1.1\r\nHost: x\r\n'),
        rawExchange(server.port, `GET /ok HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(64 * 1024)}\r\n\r\n`),
        rawExchange(server.port, '\x00\x01\x02 not http\r\n\r\n'),
        rawExchange(server.port, 'GET /ok HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n'),
      ]);
      const statuses = ['408', '431', '400', '400'];
      for (const [i, { answer }] of answers.entries()) {
        assert.match(answer, new RegExp(`^HTTP/1\\.1 ${statuses[i]} `), answer);
        assert.match(answer, /\r\ncontent-type: application\/json; charset=utf-8\r\n/i);
        const [head, body] = answer.split('\r\n\r\n');
        const length = Number(/content-length: (\d+)/i.exec(head!)?.[1]);
        assert.equal(Buffer.byteLength(body!), length);
        const parsed = JSON.parse(body!) as { error?: unknown };
        assert.equal(typeof parsed.error, 'string');
        assert.ok((parsed.error as string).length > 10);
      }
    } finally {
      await server.close();
    }
  });

  it('caps connections below the descriptor limit, evicting idle ones so that probes still get in', async () => {
    assert.equal(connectionCap(null), MAX_CONNECTIONS);
    assert.equal(connectionCap(1_048_576), MAX_CONNECTIONS);
    assert.equal(connectionCap(120), 120 - RESERVED_DESCRIPTORS);
    assert.ok(connectionCap(20) >= 1 && connectionCap(20) <= 20, 'never more than the limit, never none');
    const own = openFilesLimit();
    assert.ok(own === null || own > 0);

    const server = await startHttpServer(
      { host: '127.0.0.1', port: 0 },
      [{ method: 'GET', path: '/ok', handler: (_req, res) => sendJson(res, 200, { ok: true }) }],
      testLog,
      { headersMs: 30_000, requestMs: 60_000, maxConnections: 4 },
    );
    const flood: net.Socket[] = [];
    try {
      for (let i = 0; i < 20; i++) {
        const socket = net.connect({ host: '127.0.0.1', port: server.port });
        socket.on('error', () => undefined);
        flood.push(socket);
        await new Promise((resolve) => socket.once('connect', resolve));
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
      const open = flood.filter((socket) => !socket.closed && !socket.destroyed && socket.readyState === 'open');
      assert.ok(open.length <= 4, `${open.length} idle connections still open, over the cap of 4`);
      for (let i = 0; i < 5; i++) {
        const answer = await fetch(`http://127.0.0.1:${server.port}/ok`);
        assert.equal(answer.status, 200, 'a probe gets in while idle connections hold the cap');
      }
    } finally {
      for (const socket of flood) socket.destroy();
      await server.close();
    }
  });
});
