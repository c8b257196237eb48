// Every command, in the order `--help` lists them. A new command is a module in this folder that
// exports its \`command\`, a line here, its name in COMMANDS and the settings it takes (src/options.ts).
import { COMMANDS, type Command } from '../options.js';
import { command as backup } from './backup.js';
import type { CommandSpec } from './command.js';
import { command as deleteSession } from './delete.js';
import { command as logout } from './logout.js';
import { command as doctor } from './doctor.js';
import { command as exportArchive } from './export.js';
import { command as history } from './history.js';
import { command as importArchive } from './import.js';
import { command as importLegacy } from './import-legacy.js';
import { command as migrate } from './migrate.js';
import { command as rekey } from './rekey.js';
import { command as restore } from './restore.js';
import { command as run } from './run.js';
import { command as sidecar } from './sidecar.js';
import { command as status } from './status.js';
import { command as verify } from './verify.js';

const ALL: readonly CommandSpec[] = [
  restore,
  sidecar,
  run,
  backup,
  status,
  history,
  exportArchive,
  importArchive,
  importLegacy,
  deleteSession,
  logout,
  verify,
  rekey,
  migrate,
  doctor,
];

function byName(): ReadonlyMap<Command, CommandSpec> {
  const specs = new Map<Command, CommandSpec>();
  for (const name of COMMANDS) {
    const spec = ALL.find((candidate) => candidate.name === name);
    if (!spec) throw new Error(`command ${name} is in COMMANDS but has no module in src/commands/`);
    specs.set(name, spec);
  }
  return specs;
}

/** The commands by name, in COMMANDS order. */
export const COMMAND_SPECS = byName();
