// Files that arrive from outside (a tar, an API body, the Flask session API's table) pass the same checks as files
// read from disk before they can become a generation: safe name, size limit, no torn JSON, no duplicates.
import { tornReason } from './creds.js';
import { invalidNameReason } from './names.js';
import { MAX_FILE_BYTES, sha256, type Snapshot } from './snapshot.js';

/**
 * Most files one incoming generation (an archive, an API body) may have. The largest real sessions have
 * about 10,000 files; the bound keeps what one request or archive makes the keeper hold in memory in
 * proportion (docs/http-api.md, "Limits").
 */
export const MAX_INCOMING_FILES = 100_000;

/** Why `content` named `name` cannot be stored, or null when it can. */
export function incomingFileProblem(name: string, content: Buffer): string | null {
  const badName = invalidNameReason(name);
  if (badName) return badName;
  if (content.length > MAX_FILE_BYTES) return `it is ${content.length} bytes, over the ${MAX_FILE_BYTES}-byte limit`;
  return tornReason(name, content);
}

/** Collects checked files into a snapshot of a whole directory. */
export class SnapshotBuilder {
  readonly snapshot: Snapshot = { files: new Map(), held: new Map() };

  /** Adds a file; returns why it was refused, or null. */
  add(name: string, content: Buffer): string | null {
    if (this.snapshot.files.has(name)) return 'the name appears twice';
    if (this.snapshot.files.size >= MAX_INCOMING_FILES) return `there are more than ${MAX_INCOMING_FILES} files`;
    const problem = incomingFileProblem(name, content);
    if (problem) return problem;
    this.snapshot.files.set(name, { name, content, sha256: sha256(content) });
    return null;
  }
}
