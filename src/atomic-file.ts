import { randomBytes } from 'node:crypto';
import { open, rename, unlink } from 'node:fs/promises';

/** Writes `content` to `file` through a temporary sibling, fsync and rename: readers never see half of it. */
export async function writeFileAtomically(file: string, content: Buffer | string, mode = 0o600): Promise<void> {
  const temp = `${file}.${randomBytes(4).toString('hex')}.partial`;
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(content);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, file);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
}
