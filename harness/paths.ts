// Where the repository and the harness's own programs are, for the processes the harness and the tests start.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** This folder as compiled (build/harness/): the bots below are run from here. */
const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (the harness runs compiled, from build/harness/). */
export const REPO = path.resolve(HERE, '../..');
/** The built CLI, exactly what users run. */
export const CLI = path.join(REPO, 'dist', 'cli.js');
/** The churning bot's process (churn-bot.ts): `node CHURN_BOT <dir> [--rate n] [--seed n]`. */
export const CHURN_BOT = path.join(HERE, 'churn-bot.js');
/** The chat bot's process (chat-bot.ts), driven by the conversation harness over a socket. */
export const CHAT_BOT = path.join(HERE, 'chat-bot.js');
