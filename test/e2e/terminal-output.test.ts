// What a person at a terminal reads, from the real CLI on a pseudo-terminal (util-linux `script`): one line
// per log event whatever its fields, durations rounded (in JSON too), progress of long work drawn on stderr
// — and, without a terminal, output with no progress in it at all.
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
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
/** Every escape sequence, carriage return or progress word: none may be in output that is no terminal's. */
const PROGRESS_MARKS =
  // biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it finds
  /\r|\u001b|restoring session|backing up session|first backup of session|exporting generation|reading the archive|\[[=-]+\]/g;
/** One pretty log event: "[14:03:12.785] INFO: message {json fields}". */
const EVENT = /^\[\d\d:\d\d:\d\d\.\d{3}\] (TRACE|DEBUG|INFO|WARN|ERROR|FATAL): /;

/** Moves to the start of the line (ESC [ n G): what a line redrawn in place is written after. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: escape sequences are what it finds
const TO_COLUMN = /\u001b\[\d*G/g;

/** The lines a terminal shows, colours removed; a line redrawn in place (\r, a move to its start) counts as what it ends with. */
function shownLines(output: string): string[] {
  return output
    .replace(TO_COLUMN, '\r')
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
    // Debug, on a database not migrated yet: the migration's list of files — fields that used to take a line each.
    const fresh = cliEnv(await freshDatabase('terminal-fresh'));
    const run = await runInTerminal(['backup', '--dir', dir, '--session', 'oneline', '--log-level', 'debug'], fresh);
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

  describe('progress of long work', async () => {
    const dir = await tempDir('progress-source');
    await writeSession(dir, { preKeys: 60, sessions: 10 });
    const files = (await readdir(dir)).length;
    for (const session of ['prog', 'many-a', 'many-b', 'many-c'])
      assert.equal((await runCli(['backup', '--dir', dir, '--session', session], { env })).code, 0);
    const work = await tempDir('progress-work');
    const archive = path.join(work, 'session.tar');
    const progressMarks = (text: string) => text.match(PROGRESS_MARKS) ?? [];

    it('restore of one session shows files and bytes done, and the rate, on a terminal', async () => {
      const target = path.join(work, 'restored-one');
      const run = await runInTerminal(['restore', '--dir', target, '--session', 'prog'], env);
      assert.equal(run.code, 0, run.output);
      assert.match(
        run.output,
        new RegExp(
          `restoring session prog +\\[[^\\]]*\\] 100% \\| ${files}/${files} files \\| [\\d.]+ KiB/[\\d.]+ KiB \\| [\\d,]+ files/s, [\\d.]+ (B|KiB|MiB)/s`,
        ),
      );
      assert.match(run.output, /restored generation 1 /);
    });

    it('restore --sessions-dir shows sessions done of all', async () => {
      const run = await runInTerminal(['restore', '--sessions-dir', path.join(work, 'restored-many'), '--session-prefix', 'many-'], env);
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, /restoring sessions +\[[^\]]*\] 100% \| 3\/3 sessions \| /);
      // Each session's line was logged while the progress line ran: below it, never drawn over by going back
      // to a saved cursor place (ESC 7 / ESC 8).
      assert.equal(run.output.match(/restored generation 1 /g)?.length, 3, run.output);
      assert.ok(!run.output.includes('\u001b7') && !run.output.includes('\u001b8'), 'no saved cursor place');
    });

    it('export and import show the bytes of the archive', async () => {
      const exported = await runInTerminal(['export', '--session', 'prog', '--output', archive], env);
      assert.equal(exported.code, 0, exported.output);
      assert.match(exported.output, /exporting generation 1 +\[[^\]]*\] 100% \| [\d.]+ KiB\/[\d.]+ KiB \| /);
      const imported = await runInTerminal(['import', '--session', 'prog-copy', '--input', archive], env);
      assert.equal(imported.code, 0, imported.output);
      assert.match(imported.output, /reading the archive +\[[^\]]*\] 100% \| [\d.]+ KiB\/[\d.]+ KiB \| /);
    });

    it('backup shows the files read', async () => {
      const run = await runInTerminal(['backup', '--dir', dir, '--session', 'prog-backup'], env);
      assert.equal(run.code, 0, run.output);
      assert.match(run.output, new RegExp(`backing up session prog-backup +\\[[^\\]]*\\] 100% \\| ${files}/${files} files \\| `));
    });

    it('the first backup of a large session shows the files read', async () => {
      const large = await tempDir('progress-large');
      await writeSession(large, { preKeys: 1_000 });
      const count = (await readdir(large)).length;
      const run = await runInTerminal(
        ['sidecar', '--dir', large, '--session', 'large', '--listen', '127.0.0.1:0', '--shutdown-quiet', '0'],
        env,
        {
          wrapper: ['timeout', '-s', 'TERM', '5'],
        },
      );
      assert.match(
        run.output,
        new RegExp(
          `first backup of session large +\\[[^\\]]*\\] 100% \\| ${count.toLocaleString('en-US')}/${count.toLocaleString('en-US')} files`,
        ),
        run.output,
      );
      assert.match(run.output, /backup stored/);
    });

    it('without a terminal (or with JSON logs) there is no progress at all: the output is what it was', async () => {
      const backedUp = await runCli(['backup', '--dir', dir, '--session', 'prog-piped-backup'], { env });
      assert.equal(backedUp.code, 0, backedUp.stderr);
      const restored = await runCli(['restore', '--dir', path.join(work, 'piped'), '--session', 'prog'], { env });
      assert.equal(restored.code, 0, restored.stderr);
      const exported = await runCli(['export', '--session', 'prog'], { env });
      assert.equal(exported.code, 0, exported.stderr);
      await writeFile(path.join(work, 'piped.tar'), exported.stdoutBytes);
      const imported = await runCli(['import', '--session', 'prog-piped', '--input', path.join(work, 'piped.tar')], { env });
      assert.equal(imported.code, 0, imported.stderr);
      for (const result of [backedUp, restored, exported, imported]) {
        assert.deepEqual(progressMarks(result.stderr), []);
        // Logs are JSON lines, and the only other line is a command's result.
        for (const line of `${result.stderr}${result === exported ? '' : result.stdout}`.split('\n').filter(Boolean))
          if (!/^generation \d+ of session /.test(line)) JSON.parse(line);
      }
      const json = await runInTerminal(
        ['restore', '--dir', path.join(work, 'json-logs'), '--session', 'prog', '--log-format', 'json'],
        env,
      );
      assert.equal(json.code, 0, json.output);
      assert.deepEqual(progressMarks(json.output), [], json.output);
    });
  });
});
