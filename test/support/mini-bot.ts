// A minimal bot process for `run` tests: writes through the real useMultiFileAuthState and then
// behaves as told. Usage: node mini-bot.js <auth-dir> <mode> [arg]
//   exit <code>     write a key, then exit with <code>
//   wait-term       print "bot: ready", then on SIGTERM write a last key and exit 0
//   slow-term <ms>  print "bot: ready", then on SIGTERM wait <ms>, write a last key ("bot: stopped"), exit 0
//   ignore-term     write a key, print "bot: ready"; on SIGTERM write another key and carry on (only SIGKILL ends it)
//   self-kill       write a key, then kill itself with SIGKILL
//   report          print "bot: paired" or "bot: unpaired" (what it found at start), exit 0
//   marker <file>   create <file> (proves the bot started), exit 0
//   signals         print "bot: SIGHUP" on SIGHUP and keep running; on SIGINT print "bot: SIGINT", exit 0
//   env [pidfile]   print which of ENV_REPORTED it has ("bot: NAME=set|unset", BOT_OWN_SETTING's value);
//                   with the embedded server's postmaster.pid, the same for that server ("server: …")
import { readFile, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { useMultiFileAuthState } from '@whiskeysockets/baileys';

const [dir, mode, arg] = process.argv.slice(2) as [string, string, string | undefined];
const ENV_REPORTED = ['KEEPER_ENCRYPTION_KEY', 'KEEPER_ENCRYPTION_KEYS', 'KEEPER_API_TOKEN', 'DATABASE_URL', 'PORT', 'BOT_OWN_SETTING'];
const auth = await useMultiFileAuthState(dir);
const paired = Boolean(auth.state.creds.me);
const writeKey = async (id: string): Promise<void> => {
  await auth.state.keys.set({ session: { [id]: randomBytes(256) } } as never);
};

switch (mode) {
  case 'exit':
    await writeKey('5511000000010.0');
    await auth.saveCreds();
    process.exit(Number(arg ?? 0));
    break;
  case 'wait-term':
    await auth.saveCreds();
    process.on('SIGTERM', () => {
      void writeKey('5511000000099.0').then(() => {
        process.stdout.write('bot: stopped\n');
        process.exit(0);
      });
    });
    process.stdout.write('bot: ready\n');
    setInterval(() => undefined, 1000);
    break;
  case 'slow-term':
    await auth.saveCreds();
    process.on('SIGTERM', () => {
      // A bot's graceful stop takes time (closing its socket, flushing keys): the last key comes late.
      setTimeout(
        () => {
          void writeKey('5511000000098.0').then(() => {
            process.stdout.write('bot: stopped\n');
            process.exit(0);
          });
        },
        Number(arg ?? 1000),
      );
    });
    process.stdout.write('bot: ready\n');
    setInterval(() => undefined, 1000);
    break;
  case 'ignore-term':
    await writeKey('5511000000012.0');
    process.on('SIGTERM', () => void writeKey('5511000000013.0').then(() => process.stdout.write('bot: ignoring SIGTERM\n')));
    process.stdout.write('bot: ready\n');
    setInterval(() => undefined, 1000);
    break;
  case 'self-kill':
    await writeKey('5511000000011.0');
    process.kill(process.pid, 'SIGKILL');
    break;
  case 'report':
    process.stdout.write(paired ? 'bot: paired\n' : 'bot: unpaired\n');
    break;
  case 'marker':
    await writeFile(arg!, 'started');
    break;
  case 'signals':
    process.on('SIGHUP', () => process.stdout.write('bot: SIGHUP\n'));
    process.on('SIGINT', () => {
      process.stdout.write('bot: SIGINT\n');
      process.exit(0);
    });
    process.stdout.write('bot: ready\n');
    setInterval(() => undefined, 1000);
    break;
  case 'env': {
    const report = (who: string, vars: Record<string, string | undefined>) => {
      for (const name of ENV_REPORTED) process.stdout.write(`${who}: ${name}=${vars[name] === undefined ? 'unset' : 'set'}\n`);
      process.stdout.write(`${who}: BOT_OWN_SETTING=${vars['BOT_OWN_SETTING'] ?? ''}\n`);
    };
    report('bot', process.env);
    if (arg) {
      const pid = (await readFile(arg, 'utf8')).split('\n')[0]!;
      const environ = (await readFile(`/proc/${pid}/environ`, 'utf8')).split('\0').filter(Boolean);
      report(
        'server',
        Object.fromEntries(environ.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)])),
      );
    }
    break;
  }
  default:
    process.stderr.write(`unknown mode ${mode}\n`);
    process.exit(2);
}
