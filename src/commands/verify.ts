// `verify`: checks every stored file version of a session and that its head adds up; exit 4 on any failure.
import { IntegrityError } from '../errors.js';
import { hintsOf } from '../store/index.js';
import type { CommandSpec, Context } from './command.js';
import { withStore } from './database.js';
import { print, printJson } from './output.js';

export async function verifyCommand(ctx: Context<'verify'>): Promise<number> {
  const { config } = ctx;
  const [{ checked, failures }, damaged] = await withStore(
    ctx,
    (store) => Promise.all([store.verify(config.sessionId), store.headProblems(config.sessionId, '', true)] as const),
    0,
    'read',
  );
  // A head that does not add up fails verification like a bad checksum: restore refuses it (exit 4).
  const head = damaged.get(config.sessionId) ?? [];
  const hints = hintsOf(failures);
  if (config.json) {
    printJson(ctx, {
      session_id: config.sessionId,
      checked,
      failures: failures.map((f) => ({ name: f.name, generation: f.generationFrom, reason: f.reason })),
      head_problems: head,
    });
  } else {
    for (const problem of head) print(ctx, `FAILED  head: ${problem}`);
    for (const failure of failures)
      print(ctx, `FAILED  ${failure.reason}${failure.generationFrom === null ? '' : ` (stored at generation ${failure.generationFrom})`}`);
    if (failures.length === 0 && head.length === 0)
      print(ctx, `ok: ${checked} stored file versions of session ${config.sessionId} match their checksums`);
  }
  if (head.length > 0) {
    throw new IntegrityError(
      `the head of session ${config.sessionId} does not add up (${head.join('; ')})` +
        `${failures.length > 0 ? ` and ${failures.length} of ${checked} stored file versions failed verification` : ''}: ` +
        'restore cannot use it; restore an older generation that verifies with --generation N (history lists them), ' +
        'or re-import a good export',
    );
  }
  const missingKeys = [...new Set(failures.map((f) => f.missingKey).filter((id): id is string => id !== null))];
  if (missingKeys.length > 0) {
    throw new IntegrityError(
      `${failures.length} of ${checked} stored file versions of session ${config.sessionId} ` +
        `are encrypted with key id ${missingKeys.join(', ')}, which is not configured: ` +
        'set KEEPER_ENCRYPTION_KEY / KEEPER_ENCRYPTION_KEY_FILE to that key or add it to KEEPER_ENCRYPTION_KEYS, then verify again',
    );
  }
  if (failures.length > 0) {
    throw new IntegrityError(
      `${failures.length} of ${checked} stored file versions of session ${config.sessionId} failed verification: ` +
        (hints.length > 0
          ? hints.join(' ')
          : 'restore a generation that does not contain them (history lists generations), or re-import a good export'),
    );
  }
  return 0;
}

export const command: CommandSpec<'verify'> = {
  name: 'verify',
  summary: 'check every stored file of a session: name, size, checksum and (encrypted) authenticity',
  logTo: 'stderr',
  run: verifyCommand,
};
