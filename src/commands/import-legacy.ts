// `import-legacy`: moves sessions from the Flask session API's whatsapp_sessions table into the keeper, each
// row as a generation. A bad row is reported and skipped whole; importing twice adds nothing.
import { ExitCode, NothingToRestoreError, RefusedError } from '../errors.js';
import { SnapshotBuilder } from '../incoming.js';
import { isValidSessionId, quoteName, SESSION_ID_RULE } from '../names.js';
import type { Snapshot } from '../snapshot.js';
import { thinHistory } from './backup.js';
import type { CommandSpec, Context } from './command.js';
import { withLease, withStore } from './database.js';
import { print, printJson } from './output.js';

type Outcome =
  | { session_id: string; result: 'imported' | 'unchanged'; generation: number; files: number }
  | { session_id: string; result: 'skipped'; reason: string; exitCode: number };

export async function importLegacyCommand(ctx: Context<'import-legacy'>): Promise<number> {
  const { config } = ctx;
  const log = ctx.log.child({ component: 'import-legacy' });
  const outcomes = await withStore(ctx, async (store) => {
    const rows = await store.legacyRows(config.table, config.all ? null : config.sessionId);
    if (!config.all && rows.length === 0) {
      throw new NothingToRestoreError(`table ${config.table} has no row with session_id ${config.sessionId}; --all imports every row`);
    }
    const results: Outcome[] = [];
    for (const row of rows) {
      const skip = (reason: string, exitCode: number = ExitCode.integrity): Outcome => ({
        session_id: row.sessionId,
        result: 'skipped',
        reason,
        exitCode,
      });
      if (!isValidSessionId(row.sessionId)) {
        results.push(skip(`the session_id is not ${SESSION_ID_RULE}`));
        continue;
      }
      const parsed = toSnapshot(row.sessionData);
      if (typeof parsed === 'string') {
        results.push(skip(parsed));
        continue;
      }
      try {
        const result = await withLease(store, row.sessionId, (lease) =>
          store.backup(row.sessionId, parsed, { lease, allowReplace: config.allowReplace, reason: 'import-legacy', scope: null }),
        );
        await thinHistory(store, config.retention, row.sessionId, log);
        if (result.kind === 'refused') results.push(skip(result.reason, ExitCode.unexpected));
        else
          results.push({
            session_id: row.sessionId,
            result: result.kind === 'success' ? 'imported' : 'unchanged',
            generation: result.generation,
            files: parsed.files.size,
          });
      } catch (error) {
        if (!(error instanceof RefusedError)) throw error;
        results.push(skip(error.message, ExitCode.unexpected));
      }
    }
    return results;
  });

  for (const outcome of outcomes) {
    if (outcome.result === 'skipped') log.warn({ session: outcome.session_id }, `skipped session ${outcome.session_id}: ${outcome.reason}`);
    else
      log.info(
        { session: outcome.session_id, generation: outcome.generation, files: outcome.files },
        `${outcome.result} session ${outcome.session_id}`,
      );
  }
  if (config.json) {
    printJson(ctx, {
      table: config.table,
      sessions: outcomes.map((o) => (o.result === 'skipped' ? { session_id: o.session_id, result: o.result, reason: o.reason } : o)),
    });
  } else if (outcomes.length === 0) {
    print(ctx, `table ${config.table} has no rows`);
  } else {
    for (const o of outcomes) {
      print(
        ctx,
        o.result === 'skipped'
          ? `skipped    ${o.session_id}: ${o.reason}`
          : `${o.result.padEnd(10)} ${o.session_id}: generation ${o.generation} (${o.files} files)`,
      );
    }
  }
  // Any skipped row fails the command; bad data (4) outranks a refusal (1).
  const skipped = outcomes.filter((o) => o.result === 'skipped');
  if (skipped.some((o) => o.exitCode === ExitCode.integrity)) return ExitCode.integrity;
  return skipped.length > 0 ? ExitCode.unexpected : ExitCode.ok;
}

/** A whole-directory snapshot from a row's session_data, or why the row cannot be imported. */
function toSnapshot(data: unknown): Snapshot | string {
  if (typeof data !== 'object' || data === null || Array.isArray(data)) return 'session_data is not an object of file name → file text';
  const entries = Object.entries(data as Record<string, unknown>);
  if (entries.length === 0) return 'session_data is empty';
  const builder = new SnapshotBuilder();
  for (const [name, text] of entries) {
    if (typeof text !== 'string') return `file ${quoteName(name)} is not text`;
    const problem = builder.add(name, Buffer.from(text, 'utf8'));
    if (problem) return `file ${quoteName(name)}: ${problem}`;
  }
  return builder.snapshot;
}

export const command: CommandSpec<'import-legacy'> = {
  name: 'import-legacy',
  summary: "import sessions from the Flask session API's whatsapp_sessions table (--all for every row)",
  logTo: 'stderr',
  run: importLegacyCommand,
};
