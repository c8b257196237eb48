// Webhook deliveries (SPEC "Session lifecycle") to a real HTTP receiver on loopback: the exact body and its
// signature, retries with backoff on the sender's clock while the receiver is down or failing, attempts
// abandoned at the timeout, the bounded queue, events dropped for age or at shutdown, and URLs whose
// secrets never reach a log line. Counts are read from the real prom-client registry.
import assert from 'node:assert/strict';
import { createHmac, timingSafeEqual } from 'node:crypto';
import { describe, it } from 'node:test';
import { pino } from 'pino';
import type { Clock } from '../../src/clock.js';
import { UsageError } from '../../src/errors.js';
import { Metrics } from '../../src/metrics.js';
import { type WebhookOptions, WebhookSender } from '../../src/notify/webhook.js';
import type { SessionEvent } from '../../src/lifecycle-events.js';
import { waitFor } from '../../harness/sidecar.js';
import { ManualClock } from '../support/manual-clock.js';
import { resultCounts } from '../support/metrics.js';
import { freePort } from '../support/net.js';
import { Receiver } from '../support/receiver.js';

const METRIC = 'baileys_keeper_webhook_deliveries_total';
const JID = '5511987654321:12@s.whatsapp.net';

/** A sender to `url` on a manual clock, with its own registry and a captured debug-level log. */
function webhook(url: string, options: Partial<WebhookOptions> = {}) {
  const clock = new ManualClock();
  const metrics = new Metrics();
  const logs: string[] = [];
  const log = pino({ level: 'debug' }, { write: (line: string) => void logs.push(line) });
  const sender = new WebhookSender({ url, secret: null, clock, log, deliveries: metrics.webhookDeliveries, ...options });
  const counts = () => resultCounts(metrics.registry, METRIC);
  return {
    clock,
    sender,
    logs,
    counts,
    /** Waits (real time) until `result` has been counted `n` times. */
    counted: (result: string, n: number) =>
      waitFor(
        async () => (((await counts())[result] ?? 0) >= n ? true : null),
        5_000,
        () => `${result} was not counted ${n} times`,
      ),
  };
}

/** Event number `generation` of session acme-alice. */
function event(generation: number, more: Partial<SessionEvent> = {}): SessionEvent {
  return { event: 'logged_out', sessionId: 'acme-alice', generation, jid: JID, ...more };
}

/** The generations of the events a receiver got, in order of arrival. */
function generations(receiver: Receiver): number[] {
  return receiver.requests.map((request) => JSON.parse(request.body.toString('utf8')).generation);
}

describe('webhook deliveries', () => {
  it('POSTs exactly the SPEC body, phone masked to its last 4 digits, signed with HMAC-SHA256 of the raw bytes', async () => {
    const receiver = await Receiver.start();
    const secret = Buffer.from('a webhook secret');
    const { sender, counted } = webhook(receiver.url(), { secret });
    sender.send(event(42, { at: Date.UTC(2026, 11, 6, 7, 30, 0, 123) }));

    const [request] = await receiver.received(1);
    assert.equal(request!.method, 'POST');
    assert.equal(request!.headers['content-type'], 'application/json');
    const raw = request!.body.toString('utf8');
    assert.equal(
      raw,
      '{"event":"logged_out","session_id":"acme-alice","at":"2026-12-06T07:30:00.123Z","generation":42,"phone":"*********4321"}',
    );
    assert.doesNotMatch(raw, /\d{5,}/, 'no run of digits long enough to be more of the number');

    // What a receiver does: its own HMAC of the bytes it got, compared in constant time.
    const signature = String(request!.headers['x-keeper-signature']);
    const expected = `sha256=${createHmac('sha256', secret).update(request!.body).digest('hex')}`;
    assert.ok(signature.length === expected.length && timingSafeEqual(Buffer.from(signature), Buffer.from(expected)));
    await counted('success', 1);
  });

  it('masks every form of jid to its last 4 digits, sends null without one, and stamps the time of send() by default', async () => {
    const receiver = await Receiver.start();
    const { sender, clock } = webhook(receiver.url());
    const sentAt = new Date(clock.wall()).toISOString();
    sender.send(event(1, { event: 'paired', jid: '447700900123@s.whatsapp.net' }));
    sender.send(event(2, { event: 'repaired', jid: '123456789012345:7@lid' }));
    sender.send(event(3, { event: 'unprotected', jid: null, generation: null }));
    sender.send(event(4, { event: 'identity_refused', jid: '1234@s.whatsapp.net' }));
    const bodies = (await receiver.received(4)).map((request) => JSON.parse(request.body.toString('utf8')));
    assert.deepEqual(
      bodies.map((body) => [body.event, body.phone, body.generation]),
      [
        ['paired', '********0123', 1],
        ['repaired', '***********2345', 2],
        ['unprotected', null, null],
        ['identity_refused', '****', 4],
      ],
    );
    for (const body of bodies) assert.equal(body.at, sentAt);
  });

  it('sends no signature header without a secret', async () => {
    const receiver = await Receiver.start();
    const { sender } = webhook(receiver.url());
    sender.send(event(1));
    const [request] = await receiver.received(1);
    assert.equal(request!.headers['x-keeper-signature'], undefined);
  });

  it('retries with backoff while the receiver is down, then delivers every event in order once it is up', async () => {
    const port = await freePort();
    const { sender, clock, counted, counts } = webhook(`http://127.0.0.1:${port}/hook`);
    const start = clock.now();
    sender.send(event(1));
    sender.send(event(2));
    sender.send(event(3));
    await counted('failure', 1);
    assert.equal(clock.next(), start + 1_000, 'the first pause is 1 s');
    await clock.advance(1_000);
    await counted('failure', 2);
    assert.equal(clock.next(), start + 3_000, 'the second pause is 2 s');

    const receiver = await Receiver.start(port);
    await clock.advance(2_000);
    await receiver.received(3);
    assert.deepEqual(generations(receiver), [1, 2, 3]);
    await counted('success', 3);
    assert.deepEqual(await counts(), { success: 3, failure: 2, dropped: 0 });
  });

  it('retries a 500 with the same bytes, signature and delivery id, counting each failed attempt', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push(500, 503);
    const { sender, clock, counted, counts } = webhook(receiver.url(), { secret: Buffer.from('k') });
    sender.send(event(7));
    await counted('failure', 1);
    await clock.advance(1_000);
    await counted('failure', 2);
    await clock.advance(2_000);
    const requests = await receiver.received(3);
    await counted('success', 1);
    assert.deepEqual(await counts(), { success: 1, failure: 2, dropped: 0 });
    for (const request of requests.slice(1)) {
      assert.deepEqual(request.body, requests[0]!.body);
      assert.equal(request.headers['x-keeper-signature'], requests[0]!.headers['x-keeper-signature']);
      assert.equal(request.headers['x-keeper-delivery'], requests[0]!.headers['x-keeper-delivery']);
    }
  });

  it('abandons each attempt the receiver never answers after the timeout, and send() never waits for the receiver', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push('hang', 'hang');
    const { sender, clock, counted, counts, logs } = webhook(receiver.url(), { timeoutMs: 150 });
    sender.send(event(1));
    await receiver.received(1);
    // The receiver holds the first request: a second send() returns while it still has not answered.
    assert.equal(sender.send(event(2)), undefined);
    assert.equal(receiver.answered, 0, 'send() returned before the receiver answered');

    await counted('failure', 1);
    assert.equal(receiver.answered, 0, 'the attempt was abandoned by the sender, not answered');
    assert.ok(logs.some((line) => line.includes('no answer within 150 ms')));
    await clock.advance(1_000);
    await counted('failure', 2);
    assert.equal(receiver.requests.length, 2, 'one attempt at a time: event 2 waits behind event 1');
    await clock.advance(2_000);
    await receiver.received(4);
    assert.deepEqual(generations(receiver), [1, 1, 1, 2]);
    await counted('success', 2);
    assert.deepEqual(await counts(), { success: 2, failure: 2, dropped: 0 });
  });

  it('drops the oldest waiting event when the queue is full, never the one being sent', async () => {
    const port = await freePort();
    const { sender, clock, counted, counts, logs } = webhook(`http://127.0.0.1:${port}/hook`, { queueLimit: 2 });
    sender.send(event(1));
    await counted('failure', 1); // event 1 now waits out a pause: it is the oldest waiting
    sender.send(event(2));
    sender.send(event(3));
    sender.send(event(4));
    assert.deepEqual(await counts(), { success: 0, failure: 1, dropped: 2 });
    const receiver = await Receiver.start(port);
    await clock.advance(1_000);
    await receiver.received(2);
    assert.deepEqual(generations(receiver), [3, 4]);
    await counted('success', 2);

    // An event whose attempt is in flight may already have reached the receiver: the next oldest goes.
    receiver.answers.push('hang');
    sender.send(event(5));
    await receiver.received(3);
    sender.send(event(6));
    sender.send(event(7));
    sender.send(event(8));
    assert.deepEqual(await counts(), { success: 2, failure: 1, dropped: 3 });
    receiver.answerHanging(200);
    await receiver.received(5);
    assert.deepEqual(generations(receiver), [3, 4, 5, 7, 8]);
    const dropped = logs.map((line) => JSON.parse(line)).filter((line) => line.msg.startsWith('webhook event dropped'));
    assert.deepEqual(
      dropped.map((line) => line.generation),
      [1, 2, 6],
    );
  });

  it('drops an event retryForMs after it was sent, after a last attempt at that moment; a younger one still arrives', async () => {
    const port = await freePort();
    const { sender, clock, counts, counted } = webhook(`http://127.0.0.1:${port}/hook`, { retryForMs: 10_000 });
    const start = clock.now();
    sender.send(event(1));
    sender.send(event(2)); // waits behind event 1: its one attempt comes at its deadline, 10 s
    // Each pause on the clock, by when it ends: 1, 2, 4 s; the 8 s one is cut to event 1's deadline (10 s).
    const pauses: number[] = [];
    while (pauses.at(-1) !== 11_000 && pauses.length < 10) {
      const next = await waitFor(
        () => clock.next(),
        5_000,
        () => 'the sender never paused',
      );
      pauses.push(next - start);
      if (pauses.length === 2) sender.send(event(3)); // sent at 1 s: its deadline is 11 s
      if (next - start < 11_000) await clock.advance(next - clock.now());
    }
    // At 10 s event 1 failed its last attempt and event 2 its only one: both dropped. Event 3 failed once
    // at 10 s too, and its pause is cut to its own deadline.
    assert.deepEqual(pauses, [1_000, 3_000, 7_000, 10_000, 11_000]);
    assert.deepEqual(await counts(), { success: 0, failure: 7, dropped: 2 });
    const receiver = await Receiver.start(port);
    await clock.advance(1_000);
    await receiver.received(1);
    assert.deepEqual(generations(receiver), [3]);
    await counted('success', 1);
    assert.deepEqual(await counts(), { success: 1, failure: 7, dropped: 2 });
  });

  it('makes the last attempt at the deadline even when the timers fire late, as real ones do', async () => {
    const port = await freePort();
    const manual = new ManualClock();
    const late: Clock = { now: () => manual.now(), wall: () => manual.wall(), setTimer: (fn, ms) => manual.setTimer(fn, ms + 1) };
    const { sender, counts, counted } = webhook(`http://127.0.0.1:${port}/hook`, { retryForMs: 10_000, clock: late });
    sender.send(event(1));
    for (let failures = 1; failures <= 5; failures++) {
      await counted('failure', failures);
      const next = manual.next();
      if (next !== null) await manual.advance(next - manual.now());
    }
    await counted('dropped', 1);
    assert.deepEqual(await counts(), { success: 0, failure: 5, dropped: 1 }, 'attempts at 0, 1, 3, 7 s and a last one at 10 s');
  });

  it('does not follow a redirect: a failure, logged with the target masked', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push({ status: 302, headers: { Location: '/elsewhere/T0KEN?sig=abc' } });
    const { sender, clock, counted, logs } = webhook(receiver.url());
    sender.send(event(1));
    await counted('failure', 1);
    await clock.advance(1_000);
    await counted('success', 1);
    assert.deepEqual(
      receiver.requests.map((request) => request.url),
      ['/hook', '/hook'],
      'the redirect target was never requested',
    );
    const warning = logs.map((line) => JSON.parse(line)).find((line) => line.level === 40);
    assert.equal(warning.location, `http://127.0.0.1:${receiver.port}/***`);
    assert.match(warning.msg, /redirect .* not followed/);
    assert.ok(!logs.join('\n').includes('T0KEN') && !logs.join('\n').includes('sig=abc'));
  });

  it('never prints the userinfo, path or query of its URL, and sends the userinfo as Basic authorization', async () => {
    const receiver = await Receiver.start();
    receiver.answers.push(500);
    const secrets = ['hook-user', 'pa55word', 'T0KEN', 'qu3ry'];
    const url = `http://hook-user:pa55word@127.0.0.1:${receiver.port}/services/T0KEN/B1?sig=qu3ry`;
    const { sender, clock, counted, logs } = webhook(url, { timeoutMs: 150 });
    sender.send(event(1));
    await counted('failure', 1);
    await clock.advance(1_000);
    await counted('success', 1);
    const [request] = receiver.requests;
    assert.equal(request!.url, '/services/T0KEN/B1?sig=qu3ry');
    assert.equal(request!.headers.authorization, `Basic ${Buffer.from('hook-user:pa55word').toString('base64')}`);

    // A refused connection, a timeout and a drop at shutdown, to the same URL on a port nothing listens on.
    const down = await freePort();
    const other = webhook(url.replace(String(receiver.port), String(down)), { timeoutMs: 150 });
    other.sender.send(event(2));
    await other.counted('failure', 1);
    await other.sender.close(0);
    await other.counted('dropped', 1);

    const printed = [...logs, ...other.logs].join('\n');
    assert.ok(printed.includes(`127.0.0.1:${receiver.port}`), 'the logs name the host');
    for (const secret of secrets) assert.ok(!printed.includes(secret), `${secret} appears in a log line`);
    for (const bad of [url.replace('http:', 'ftp:'), `not a url ${url}`, url.replace('127.0.0.1', '')]) {
      assert.throws(
        () => webhook(bad),
        (error: unknown) => error instanceof UsageError && secrets.every((secret) => !error.message.includes(secret)),
      );
    }
  });

  it('close() delivers what is queued, retries until its deadline, then drops the rest and anything sent later', async () => {
    const receiver = await Receiver.start();
    const up = webhook(receiver.url());
    up.sender.send(event(1));
    up.sender.send(event(2));
    await up.sender.close(5_000);
    assert.deepEqual(await up.counts(), { success: 2, failure: 0, dropped: 0 });

    const port = await freePort();
    const down = webhook(`http://127.0.0.1:${port}/hook`);
    down.sender.send(event(1));
    down.sender.send(event(2));
    await down.counted('failure', 1);
    const closing = down.sender.close(5_000);
    await down.counted('failure', 2); // the pause is cut: one more attempt at once
    await down.clock.runUntilSettled(closing);
    const failures = (await down.counts())['failure']!;
    assert.ok(failures >= 3, 'it kept retrying until the deadline');
    assert.deepEqual(await down.counts(), { success: 0, failure: failures, dropped: 2 });
    down.sender.send(event(3));
    assert.deepEqual(await down.counts(), { success: 0, failure: failures, dropped: 3 });

    // An attempt still waiting for its answer at the deadline is abandoned.
    receiver.answers.push('hang');
    const hung = webhook(receiver.url(), { timeoutMs: 60_000 });
    hung.sender.send(event(4));
    await receiver.received(3);
    const stopping = hung.sender.close(1_000);
    await hung.clock.advance(1_000);
    await stopping;
    assert.deepEqual(await hung.counts(), { success: 0, failure: 1, dropped: 1 });
  });

  it('exposes every result at 0 from the start', async () => {
    const text = await new Metrics().registry.getSingleMetricAsString(METRIC);
    for (const result of ['success', 'failure', 'dropped']) assert.match(text, new RegExp(`^${METRIC}\\{result="${result}"\\} 0$`, 'm'));
  });
});
