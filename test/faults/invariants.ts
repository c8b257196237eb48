// The checks run after every fault run. Each reports into the run's log under its invariant's number.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { pino } from 'pino';
import { parseCreds, tornReason } from '../../src/creds.js';
import { createDatabase } from '../../src/db/pool.js';
import { migrate } from '../../src/db/migrate.js';
import { sha256 } from '../../src/snapshot.js';
import { loadEverything, REGISTERED_JID } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { query, withClient } from '../../harness/db.js';
import { readTree } from '../../harness/fs.js';
import { diffTrees, storedHead } from '../../harness/sidecar.js';
import type { Keeper } from './processes.js';
import type { RunLog } from './violations.js';

const SCHEMA = 'baileys_keeper';
const silent = pino({ level: 'silent' });
/** Connection names of the one-shot `backup` commands a scenario runs while no keeper is running. */
export const ONE_SHOT_WRITERS = new Set(['backup-command']);

/**
 * Migrates the run's database and adds an audit trigger (test instrumentation, not part of the
 * schema). It is a deferred constraint trigger, so it fires as each backup transaction COMMITs, and it
 * records who committed: the connection's application_name, which the run sets to the keeper's name
 * (see `withWriterName`), next to the lease owner and token the session row holds at that moment and
 * whether that lease was still live by the database's clock at commit (clock_timestamp(), not the
 * transaction's start). The checks then compare the committer with the lease owner's process, so a
 * writer that commits without holding the lease is seen even if it is killed before it logs anything.
 */
export async function prepareDatabase(url: string): Promise<void> {
  const db = createDatabase({ url, schema: SCHEMA, log: silent });
  try {
    await migrate(db);
  } finally {
    await db.close();
  }
  await withClient(url, (client) =>
    client.query(`
      CREATE TABLE public.faults_audit (session_id text, generation bigint, lease_token bigint, lease_owner text, writer text, live_at_commit boolean);
      CREATE FUNCTION public.faults_audit_generation() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        INSERT INTO public.faults_audit
        SELECT NEW.session_id, NEW.generation, s.lease_token, s.lease_owner, current_setting('application_name'),
               s.lease_owner IS NOT NULL AND s.lease_expires_at > clock_timestamp()
          FROM ${SCHEMA}.sessions s WHERE s.session_id = NEW.session_id;
        RETURN NEW;
      END $$;
      CREATE CONSTRAINT TRIGGER faults_audit AFTER INSERT ON ${SCHEMA}.generations DEFERRABLE INITIALLY DEFERRED
        FOR EACH ROW EXECUTE FUNCTION public.faults_audit_generation();`),
  );
}

/** `url` with the connection's application_name set to `writer`, so the audit trigger knows who commits. */
export function withWriterName(url: string, writer: string): string {
  const parsed = new URL(url);
  parsed.searchParams.set('application_name', writer);
  return parsed.toString();
}

/** Names in `dir` whose content is a torn write (Baileys reads them as missing; the store keeps the last good one). */
function tornNames(tree: Map<string, string>): Set<string> {
  return new Set([...tree].filter(([name, text]) => tornReason(name, Buffer.from(text)) !== null).map(([name]) => name));
}

/**
 * Invariant 10 at the end of every run, once the head had its time to settle: while the head still differs
 * from the directory (torn leftovers of a killed bot aside), the writer must not say it is protected.
 */
export async function checkNeverGreen(url: string, sessionId: string, dir: string, keepers: readonly Keeper[], run: RunLog): Promise<void> {
  const tree = await readTree(dir).catch(() => new Map<string, string>());
  const torn = tornNames(tree);
  const head = await storedHead(url, sessionId);
  for (const name of torn) {
    tree.delete(name);
    head.delete(name);
  }
  const problems = diffTrees(head, tree);
  if (problems.length === 0) return;
  for (const keeper of keepers) {
    if ((await keeper.metric('baileys_keeper_lease_held').catch(() => 0)) !== 1) continue;
    if ((await keeper.metric('baileys_keeper_protected').catch(() => 0)) === 1)
      run.violate(
        10,
        `${keeper.name} says protected while the head differs: ${problems.slice(0, 4).join('; ')} (${problems.length} in all)`,
      );
  }
}

/** Invariant 4: waits until the stored head equals the directory (torn leftovers of a killed bot aside). */
export async function waitConverged(url: string, sessionId: string, dir: string, run: RunLog, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let problems: string[] = [];
  for (;;) {
    const tree = await readTree(dir);
    const torn = tornNames(tree);
    const head = await storedHead(url, sessionId);
    for (const name of torn) {
      tree.delete(name);
      head.delete(name);
    }
    problems = diffTrees(head, tree);
    if (problems.length === 0) {
      if (torn.size > 0) run.note(`torn files left by a killed bot, not stored: ${[...torn].join(', ')}`);
      return;
    }
    if (Date.now() > deadline) break;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  run.violate(
    4,
    `the head still differs from the directory ${timeoutMs} ms after the bot ` +
      `stopped: ${problems.slice(0, 6).join('; ')} (${problems.length} in all)`,
  );
}

/** Invariants 5 and 3: `restore` into an empty directory gives exactly the head, which Baileys loads. */
export async function checkRestore(url: string, sessionId: string, workDir: string, run: RunLog): Promise<void> {
  const target = path.join(workDir, 'restored', 'auth_info');
  await mkdir(path.dirname(target), { recursive: true });
  const result = await runCli(['restore', '--dir', target, '--session', sessionId], { env: cliEnv(url) });
  if (result.code !== 0)
    return run.violate(
      5,
      `restore into an empty directory exited ${result.code}: ${result.stdout.slice(-400)}${result.stderr.slice(-400)}`,
    );
  await compareWithHead(url, sessionId, target, run, 'restore into an empty directory');
}

/** A restored directory must hold the head exactly (no deleted key back: invariant 3) and load with Baileys (5). */
export async function compareWithHead(url: string, sessionId: string, dir: string, run: RunLog, what: string): Promise<void> {
  const head = await storedHead(url, sessionId);
  const restored = await readTree(dir).catch(() => new Map<string, string>());
  const resurrected = [...restored.keys()].filter((name) => !head.has(name));
  if (resurrected.length > 0) run.violate(3, `${what} brought back deleted files: ${resurrected.slice(0, 6).join(', ')}`);
  const problems = diffTrees(head, restored).filter((problem) => !problem.startsWith('missing in store'));
  if (problems.length > 0) run.violate(5, `${what} differs from the head: ${problems.slice(0, 6).join('; ')}`);
  try {
    const loaded = await loadEverything(dir);
    const creds = loaded.creds as { me?: { id?: string } };
    if (creds.me?.id !== REGISTERED_JID)
      run.violate(5, `${what}: Baileys loaded creds that are not the registered ones (me: ${creds.me?.id})`);
    const keyFiles = [...head.keys()].filter((name) => /^(pre-key|session|sender-key|app-state-sync-key)-.+\.json$/.test(name)).length;
    const loadedKeys = Object.values(loaded.keys).reduce((sum, keys) => sum + Object.keys(keys).length, 0);
    if (loadedKeys !== keyFiles) run.violate(5, `${what}: Baileys loaded ${loadedKeys} keys of the ${keyFiles} stored`);
  } catch (error) {
    run.violate(5, `${what}: useMultiFileAuthState cannot load it: ${(error as Error).message}`);
  }
}

/** Invariants 1, 2, 3 and 6, from what the database holds and what the keepers logged. */
export async function checkStore(url: string, sessionId: string, keepers: readonly Keeper[], run: RunLog): Promise<void> {
  await checkNotTorn(url, sessionId, run);
  await checkWholeGenerations(url, sessionId, run);
  await checkNoResurrection(url, sessionId, run);
  await checkFencing(url, sessionId, keepers, run);
  await checkNeverBackwards(url, sessionId, run);
}

/** creds.json fields Baileys only increases (read here independently of the keeper's own rule). */
const GROWING_CREDS_FIELDS: Record<string, (creds: Record<string, unknown>) => unknown> = {
  nextPreKeyId: (c) => c['nextPreKeyId'],
  firstUnuploadedPreKeyId: (c) => c['firstUnuploadedPreKeyId'],
  accountSyncCounter: (c) => c['accountSyncCounter'],
  'processedHistoryMessages.length': (c) => (c['processedHistoryMessages'] as unknown[] | undefined)?.length,
};

/**
 * Invariant 11, from the history alone: along the stored generations no creds counter of one login
 * goes down, and no one-time pre-key or Signal ratchet file is stored again with a content it had
 * before (only a directory older than the head brings those back).
 */
async function checkNeverBackwards(url: string, sessionId: string, run: RunLog): Promise<void> {
  const creds = await query<{ generation_from: string; content: Buffer }>(
    url,
    `SELECT generation_from, content FROM ${SCHEMA}.files WHERE session_id = $1 AND name = 'creds.json' ORDER BY generation_from`,
    [sessionId],
  );
  type Seen = { identity: string; creds: Record<string, unknown> };
  let previous = null as Seen | null;
  for (const row of creds) {
    const value = JSON.parse(row.content.toString('utf8')) as Record<string, unknown>;
    const identity = JSON.stringify([value['registrationId'], (value['signedIdentityKey'] as { public?: unknown } | undefined)?.public]);
    if (previous?.identity === identity)
      for (const [field, read] of Object.entries(GROWING_CREDS_FIELDS)) {
        const [before, after] = [read(previous.creds), read(value)];
        if (typeof before === 'number' && typeof after === 'number' && after < before)
          run.violate(11, `creds.json went backwards at generation ${row.generation_from}: ${field} ${before} → ${after}`);
      }
    previous = { identity, creds: value };
  }
  const back = await query<{ name: string; generation_from: string; earlier: string }>(
    url,
    `SELECT f.name, f.generation_from, min(e.generation_from) AS earlier FROM ${SCHEMA}.files f
       JOIN ${SCHEMA}.files e ON e.session_id = f.session_id AND e.name = f.name AND e.sha256 = f.sha256
                              AND e.generation_to IS NOT NULL AND e.generation_to <= f.generation_from
      WHERE f.session_id = $1 AND f.name ~ '^(pre-key|session|sender-key)-' AND f.name NOT LIKE 'sender-key-memory-%'
      GROUP BY f.name, f.generation_from ORDER BY f.generation_from`,
    [sessionId],
  );
  for (const row of back.slice(0, 6))
    run.violate(
      11,
      `${row.name} was stored at generation ${row.generation_from} as it was at generation ${row.earlier}, which a later one had replaced`,
    );
}

/** Invariant 11 for a known stale disk: no generation after `since` (when it came back) holds exactly what it held. */
export async function checkStaleNeverHead(
  url: string,
  sessionId: string,
  stale: Map<string, string>,
  since: number,
  run: RunLog,
): Promise<void> {
  const [session] = await query<{ head_generation: string }>(url, `SELECT head_generation FROM ${SCHEMA}.sessions WHERE session_id = $1`, [
    sessionId,
  ]);
  const head = Number(session?.head_generation ?? 0);
  for (let generation = since + 1; generation <= head; generation++) {
    const rows = await query<{ name: string; content: Buffer }>(
      url,
      `SELECT name, content FROM ${SCHEMA}.files WHERE session_id = $1 AND generation_from <= $2 AND (generation_to IS NULL OR generation_to > $2)`,
      [sessionId, generation],
    );
    const tree = new Map(rows.map((row) => [row.name, row.content.toString('utf8')]));
    if (diffTrees(tree, stale).length === 0) run.violate(11, `generation ${generation} stored the stale disk as the head`);
  }
}

async function checkNotTorn(url: string, sessionId: string, run: RunLog): Promise<void> {
  const rows = await query<{ name: string; generation_from: string; content: Buffer; sha256: Buffer; size: number }>(
    url,
    `SELECT name, generation_from, content, sha256, size FROM ${SCHEMA}.files WHERE session_id = $1`,
    [sessionId],
  );
  for (const row of rows) {
    const where = `${row.name}@${row.generation_from}`;
    const torn = tornReason(row.name, row.content);
    if (torn) run.violate(1, `${where}: ${torn}`);
    else if (row.name === 'creds.json' && parseCreds(row.content.toString('utf8'))?.registeredJid !== REGISTERED_JID)
      run.violate(1, `${where}: not the registered creds object`);
    if (!sha256(row.content).equals(row.sha256) || row.content.length !== row.size)
      run.violate(1, `${where}: content does not match its checksum or size`);
  }
}

async function checkWholeGenerations(url: string, sessionId: string, run: RunLog): Promise<void> {
  const visible = (g: string) =>
    `f.session_id = g.session_id AND f.generation_from <= ${g} AND (f.generation_to IS NULL OR f.generation_to > ${g})`;
  const rows = await query<Record<string, string>>(
    url,
    `SELECT g.generation, g.total_files, g.total_bytes, g.files_changed, g.files_deleted,
            (SELECT count(*) FROM ${SCHEMA}.files f WHERE ${visible('g.generation')}) AS visible,
            (SELECT coalesce(sum(f.size), 0) FROM ${SCHEMA}.files f WHERE ${visible('g.generation')}) AS visible_bytes,
            (SELECT count(*) FROM ${SCHEMA}.files f WHERE f.session_id = g.session_id AND f.generation_from = g.generation) AS written,
            (SELECT count(*) FROM ${SCHEMA}.files f WHERE f.session_id = g.session_id AND f.generation_to = g.generation
                AND NOT EXISTS (SELECT 1 FROM ${SCHEMA}.files n WHERE n.session_id = f.session_id AND n.name = f.name AND n.generation_from = g.generation)) AS deleted
       FROM ${SCHEMA}.generations g WHERE g.session_id = $1 ORDER BY g.generation`,
    [sessionId],
  );
  const [session] = await query<{ head_generation: string }>(url, `SELECT head_generation FROM ${SCHEMA}.sessions WHERE session_id = $1`, [
    sessionId,
  ]);
  const head = Number(session?.head_generation ?? 0);
  if (rows.length !== head)
    run.violate(2, `head generation is ${head} but ${rows.length} generations are stored (nothing is pruned in these runs)`);
  rows.forEach((row, index) => {
    const g = Number(row['generation']);
    if (g !== index + 1) run.violate(2, `generation ${index + 1} is missing (found ${g})`);
    const expect = (what: string, recorded: string, actual: string) => {
      if (Number(recorded) !== Number(actual)) run.violate(2, `generation ${g}: ${what} recorded ${recorded}, stored ${actual}`);
    };
    expect('files', row['total_files']!, row['visible']!);
    expect('bytes', row['total_bytes']!, row['visible_bytes']!);
    expect('files changed', row['files_changed']!, row['written']!);
    expect('files deleted', row['files_deleted']!, row['deleted']!);
  });
  const [beyond] = await query<{ n: string }>(
    url,
    `SELECT count(*) AS n FROM ${SCHEMA}.files WHERE session_id = $1 AND (generation_from > $2 OR generation_to > $2)`,
    [sessionId, head],
  );
  if (Number(beyond?.n) > 0) run.violate(2, `${beyond?.n} file rows belong to generations after the head ${head}`);
}

/**
 * One-time pre-keys are numbered upwards and never rewritten after use: a pre-key stored again after
 * it was deleted is a deleted key brought back (by a stale restore the bot then re-uploaded from).
 */
async function checkNoResurrection(url: string, sessionId: string, run: RunLog): Promise<void> {
  const rows = await query<{ name: string; generation_from: string; generation_to: string | null }>(
    url,
    `SELECT name, generation_from, generation_to FROM ${SCHEMA}.files WHERE ` +
      `session_id = $1 AND name LIKE 'pre-key-%' ORDER BY name, generation_from`,
    [sessionId],
  );
  for (let i = 1; i < rows.length; i++) {
    const [previous, row] = [rows[i - 1]!, rows[i]!];
    if (previous.name === row.name && previous.generation_to !== null && Number(row.generation_from) > Number(previous.generation_to)) {
      run.violate(3, `${row.name} was deleted at generation ${previous.generation_to} and stored again at ${row.generation_from}`);
    }
  }
}

async function checkFencing(url: string, sessionId: string, keepers: readonly Keeper[], run: RunLog): Promise<void> {
  const audit = await query<{
    generation: string;
    lease_token: string;
    lease_owner: string | null;
    writer: string;
    live_at_commit: boolean;
  }>(
    url,
    'SELECT generation, lease_token, lease_owner, writer, live_at_commit ' +
      'FROM public.faults_audit WHERE session_id = $1 ORDER BY generation',
    [sessionId],
  );
  const [count] = await query<{ n: string }>(url, `SELECT count(*) AS n FROM ${SCHEMA}.generations WHERE session_id = $1`, [sessionId]);
  if (Number(count?.n) !== audit.length) run.violate(6, `${count?.n} generations but ${audit.length} audited commits`);
  const byGeneration = new Map(audit.map((row) => [Number(row.generation), row]));
  const keeperByName = new Map(keepers.map((keeper) => [keeper.name, keeper]));
  const ownersByToken = new Map<number, Set<string>>();
  let lastToken = 0;
  let expiredAtCommit = 0;
  for (const row of audit) {
    const token = Number(row.lease_token);
    // The committer, by its connection, must be the process that owns the lease on the locked row.
    const keeper = keeperByName.get(row.writer);
    const ownerPid = Number(row.lease_owner?.split(':')[1]);
    if (keeper && ownerPid !== keeper.pid) {
      run.violate(
        6,
        `generation ${row.generation} was committed by ${keeper.name} (pid ` +
          `${keeper.pid}), but the lease was token ${token} of ${row.lease_owner ?? 'nobody'}`,
      );
    } else if (!keeper && !ONE_SHOT_WRITERS.has(row.writer)) {
      run.violate(
        6,
        `generation ${row.generation} was committed by an unknown connection ` +
          `"${row.writer}" (lease token ${token} of ${row.lease_owner ?? 'nobody'})`,
      );
    }
    // Expired by the clock at COMMIT but still this writer's on the row it has held locked since its
    // lease check: nobody could take the lease meanwhile (taking it updates that row), so it is not a
    // second writer. A takeover before the lock shows as a different owner above.
    if (!row.live_at_commit) expiredAtCommit++;
    if (token < lastToken)
      run.violate(
        6,
        `generation ${row.generation} was committed under token ${token} after token ${lastToken} had committed: a fenced-off writer wrote`,
      );
    lastToken = Math.max(lastToken, token);
    const owners = ownersByToken.get(token) ?? new Set<string>();
    owners.add(row.lease_owner ?? '(none)');
    ownersByToken.set(token, owners);
  }
  for (const [token, owners] of ownersByToken)
    if (owners.size > 1) run.violate(6, `token ${token} committed for ${owners.size} owners: ${[...owners].join(', ')}`);
  if (expiredAtCommit > 0)
    run.note(`${expiredAtCommit} commits finished after their lease's expiry time, holding the session row locked since the lease check`);

  // What each process says it committed must be what the database saw: same token, its own connection.
  const writersByToken = new Map<number, Set<string>>();
  for (const keeper of keepers) {
    for (const line of keeper.backups()) {
      const row = byGeneration.get(line.generation);
      if (!row) {
        run.violate(6, `${keeper.name} logged generation ${line.generation}, which the database has no commit for`);
        continue;
      }
      if (Number(row.lease_token) !== line.token || row.writer !== keeper.name) {
        run.violate(
          6,
          `${keeper.name} logged generation ${line.generation} under token ${line.token}, but the ` +
            `database saw ${row.writer} commit it under token ${row.lease_token} of ${row.lease_owner}`,
        );
      }
      const writers = writersByToken.get(line.token) ?? new Set<string>();
      writers.add(keeper.name);
      writersByToken.set(line.token, writers);
    }
  }
  for (const [token, writers] of writersByToken)
    if (writers.size > 1) run.violate(6, `token ${token} was written by ${[...writers].join(' and ')}`);
}
