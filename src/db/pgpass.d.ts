// Types for the parts of `pgpass` (node-postgres' own .pgpass reader) that settings.ts uses.
declare module 'pgpass/lib/helper.js' {
  import type { Stats } from 'node:fs';

  interface Entry {
    host: string;
    port: string;
    database: string;
    user: string;
    password: string;
  }
  interface Target {
    host: string;
    port: number;
    database: string;
    user: string;
  }
  const helper: {
    /** False (with a warning on stderr, as libpq) for a file that is not plain or that group or others can access. */
    usePgPass(stats: Stats, file: string): boolean;
    parseLine(line: string): Entry | null;
    isValidEntry(entry: Entry): boolean;
    match(target: Target, entry: Entry): boolean;
  };
  export default helper;
}
