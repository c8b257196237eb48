import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run compiled from build/test/...). */
export const REPO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
/** The built CLI, exactly what users run. */
export const CLI = path.join(REPO, 'dist', 'cli.js');
