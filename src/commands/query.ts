// The read-mostly commands: status, history, verify, delete, migrate; and rekey.
import { IntegrityError, UsageError } from '../errors.js';
import { sessionStatusJson } from '../store.js';
import { describeRetention } from '../retention.js';
import { hintsOf } from '../rows.js';
import { formatBytes, print, printJson, table, withStore, type Context } from './context.js';

export async function statusCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const sessions = await withStore(ctx, (store) => store.status(config.sessionExplicit ? config.sessionId : null));
  const rows = sessions.map(sessionStatusJson);
  if (config.json) {
    printJson(ctx, { sessions: rows });
  } else if (rows.length === 0) {
    print(ctx, 'no sessions stored yet');
  } else {
    print(
      ctx,
      table(
        ['SESSION', 'GENERATION', 'LAST BACKUP', 'FILES', 'BYTES', 'REGISTERED', 'LEASE HOLDER'],
        rows.map((r) => [r.session_id, String(r.generation), r.updated_at ?? '-', String(r.files), formatBytes(r.bytes), r.registered ? `yes (${r.phone})` : 'no', r.lease_holder ?? '-']),
      ),
    );
  }
  return 0;
}

export async function historyCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const { generations, now } = await withStore(ctx, async (store) => ({ generations: await store.history(config.sessionId), now: await store.databaseNow() }));
  if (config.json) {
    printJson(ctx, {
      session_id: config.sessionId,
      retention: { schedule: config.retention.text, keep: config.retention.keep },
      generations: generations.map((g) => ({
        generation: g.generation,
        created_at: g.createdAt.toISOString(),
        files_changed: g.filesChanged,
        files_deleted: g.filesDeleted,
        total_files: g.totalFiles,
        total_bytes: g.totalBytes,
        reason: g.reason,
      })),
    });
  } else {
    // The schedule as configured for this command (KEEPER_RETENTION / --retention): set it as the writers have it.
    for (const line of describeRetention(generations, config.retention, now)) print(ctx, line);
    print(
      ctx,
      table(
        ['GENERATION', 'TIME', 'CHANGED', 'DELETED', 'FILES', 'BYTES', 'REASON'],
        generations.map((g) => [String(g.generation), g.createdAt.toISOString(), String(g.filesChanged), String(g.filesDeleted), String(g.totalFiles), formatBytes(g.totalBytes), g.reason]),
      ),
    );
  }
  return 0;
}

export async function verifyCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const { checked, failures } = await withStore(ctx, (store) => store.verify(config.sessionId));
  const hints = hintsOf(failures);
  if (config.json) {
    printJson(ctx, { session_id: config.sessionId, checked, failures: failures.map((f) => ({ name: f.name, generation: f.generationFrom, reason: f.reason })) });
  } else {
    for (const failure of failures) print(ctx, `FAILED  ${failure.reason}${failure.generationFrom === null ? '' : ` (stored at generation ${failure.generationFrom})`}`);
    if (failures.length === 0) print(ctx, `ok: ${checked} stored file versions of session ${config.sessionId} match their checksums`);
  }
  const missingKeys = [...new Set(failures.map((f) => f.missingKey).filter((id): id is string => id !== null))];
  if (missingKeys.length > 0) {
    throw new IntegrityError(
      `${failures.length} of ${checked} stored file versions of session ${config.sessionId} are encrypted with key id ${missingKeys.join(', ')}, which is not configured: ` +
        'set KEEPER_ENCRYPTION_KEY / KEEPER_ENCRYPTION_KEY_FILE to that key or add it to KEEPER_ENCRYPTION_KEYS, then verify again',
    );
  }
  if (failures.length > 0) {
    throw new IntegrityError(
      `${failures.length} of ${checked} stored file versions of session ${config.sessionId} failed verification: ` +
        (hints.length > 0 ? hints.join(' ') : 'restore a generation that does not contain them (history lists generations), or re-import a good export'),
    );
  }
  return 0;
}

export async function rekeyCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'rekey', session: config.sessionId });
  const { rewritten, keyId } = await withStore(ctx, (store) => store.rekey(config.sessionId));
  if (config.json) printJson(ctx, { session_id: config.sessionId, key_id: keyId, rewritten });
  else print(ctx, `session ${config.sessionId}: ${rewritten} stored file versions re-encrypted under key id ${keyId}; every retained version now uses it`);
  log.info({ keyId, rewritten }, 'rekey done');
  return 0;
}

export async function deleteCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  if (!config.yes) {
    throw new UsageError(`deleting session ${config.sessionId} and its whole history cannot be undone: add --yes to confirm`);
  }
  await withStore(ctx, (store) => store.delete(config.sessionId));
  print(ctx, `deleted session ${config.sessionId} and its history`);
  ctx.log.info({ session: config.sessionId }, 'session deleted');
  return 0;
}

export async function migrateCommand(ctx: Context): Promise<number> {
  const { config } = ctx;
  const schema = await withStore(ctx, async (_store, _db, schema) => schema);
  if (config.json) printJson(ctx, { schema: config.schema, version: schema.version, applied: schema.applied });
  else print(ctx, `schema ${config.schema} is at version ${schema.version}${schema.applied.length ? ` (applied ${schema.applied.join(', ')})` : ' (up to date)'}`);
  return 0;
}
