// Runs a host command for the image tests and fails with what it printed.
import { spawn } from 'node:child_process';

export interface CommandOptions {
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Stream the command's output to ours (long builds), instead of only keeping it for errors. */
  echo?: boolean;
}

/** Runs `file args`, resolves with its stdout; rejects with the command line and its output. */
export function command(file: string, args: string[], options: CommandOptions = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { cwd: options.cwd, env: options.env ?? process.env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => {
      out.push(chunk);
      if (options.echo) process.stdout.write(chunk);
    });
    child.stderr.on('data', (chunk: Buffer) => {
      err.push(chunk);
      if (options.echo) process.stderr.write(chunk);
    });
    child.once('error', (error) => reject(new Error(`cannot run ${file}: ${error.message}`)));
    child.once('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      if (code === 0) return resolve(stdout);
      const stderr = Buffer.concat(err).toString('utf8');
      reject(new Error(`${file} ${args.join(' ')} failed (${signal ?? `exit ${code}`}):\n${stdout.slice(-4000)}${stderr.slice(-4000)}`));
    });
  });
}

/** buildah on the storage driver and isolation this machine supports (no overlay, no runc). */
export function buildah(args: string[], options: CommandOptions = {}): Promise<string> {
  return command('buildah', ['--storage-driver=vfs', ...args], options);
}
