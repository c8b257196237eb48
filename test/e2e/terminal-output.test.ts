// What a person at a terminal reads, from the real CLI on a pseudo-terminal (util-linux `script`): one line
// per log event whatever its fields, durations rounded (in JSON too), progress of long work drawn on stderr
// — and, without a terminal, output with no progress in it at all.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { writeSession } from '../../harness/baileys.js';
import { cliEnv, runCli } from '../../harness/cli.js';
import { startService, waitFor } from '../../harness/sidecar.js';
import { freshDatabase } from '../support/db.js';
import { tempDir } from '../support/fs.js';
import { runInTerminal } from '../support/terminal.js';

/** ANSI escape sequences (colours, cursor moves): what a terminal interprets rather than shows. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it finds
const ESCAPES = /\u001b\[[0-9;?]*[A-Za-z]|\u001b[78]/g;
/** One pretty log event: "[14:03:12.785] INFO: message {json fields}". */
const EVENT = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;

/** The lines a terminal shows, colours removed; a line redrawn in place (\r) counts as what it ends with. */
function shownLines(output: string): string[] {
  return output
    .replace(ESCAPES, '')
    .split('\n')
    .map((line) => line.split('\r').at(-1)!)
    .filter((line) => line.trim() !== '');
}

describe('terminal output', async () => {
  const url = await freshDatabase('terminal');
  const env = cliEnv(url);

  it('on a terminal, every log event is one line with its fields on it, also those with arrays and errors', async () => {
    const dir = await tempDir('one-line');
    await writeSession(dir, { preKeys: 3 });
    // Debug: the migration's list of files, the embedded details — the fields that used to take a line each.
    const run = await runInTerminal(['backup', '--dir', dir, '--session', 'oneline', '--log-level', 'debug'], env);
    assert.equal(run.code, 0, run.output);
    const lines = shownLines(run.output);
    const events = lines.filter((line) => EVENT.test(line));
    assert.ok(
      events.some((line) => line.includes('schema migrated') && line.includes('"applied":["0001_init.sql"')),
      run.output,
    );
    for (const line of lines) {
      // The command's own result line is the only other line.
      if (line.startsWith('generation 1 of session oneline')) continue;
      assert.match(line, EVENT, `a line that is no event of its own (a field spilled over?):\n${run.output}`);
      const fields = line.replace(EVENT, '').match(/ (\{.*\})$/)?.[1];
      if (fields) JSON.parse(fields);
    }
  });

  it('--log-format pretty without a terminal is one line per event as well', async () => {
    const dir = await tempDir('pretty-pipe');
    await writeSession(dir, { preKeys: 2 });
    const result = await runCli(['backup', '--dir', dir, '--session', 'prettypipe', '--log-format', 'pretty', '--log-level', 'debug'], {
      env,
    });
    assert.equal(result.code, 0, result.stderr);
    const lines = `${result.stdout}${result.stderr}`.split('\n').filter((line) => line.trim() !== '');
    for (const line of lines) if (!line.startsWith('generation 1 of session')) assert.match(line, EVENT, result.stdout);
  });

  it('durations are logged rounded to the millisecond, in JSON too', async () => {
    const dir = await tempDir('rounded');
    await writeSession(dir, { preKeys: 2 });
    const service = await startService(['sidecar', '--dir', dir, '--session', 'rounded'], env);
    try {
      const line = await waitFor(
        () => service.output.find((text) => text.includes('"msg":"backup stored"')) ?? null,
        30_000,
        () => service.output.join('\n'),
        service.exited,
      );
      const { ms } = JSON.parse(line) as { ms: number };
      assert.ok(Number.isInteger(ms), `ms is whole milliseconds: ${line}`);
    } finally {
      await service.stop();
    }
  });
});
