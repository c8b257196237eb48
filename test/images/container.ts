// Runs an image the way a container runtime would, with what this machine has (no engine): the
// image's rootfs (buildah mount) as a READ-ONLY root, new mount and PID namespaces so the
// entrypoint is PID 1, the image's user, env, working dir, entrypoint and cmd, volumes bound in,
// and the host's network (like `--network host`), so a PostgreSQL on loopback is reachable.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { buildah, command } from './command.js';

export interface ImageConfig {
  user: string;
  entrypoint: string[];
  cmd: string[];
  env: string[];
  workingDir: string;
  labels: Record<string, string>;
  exposedPorts: string[];
}

export async function inspectImage(image: string): Promise<ImageConfig> {
  const info = JSON.parse(await buildah(['inspect', '--type', 'image', image])) as {
    OCIv1: {
      config: {
        User?: string;
        Entrypoint?: string[];
        Cmd?: string[];
        Env?: string[];
        WorkingDir?: string;
        Labels?: Record<string, string>;
        ExposedPorts?: Record<string, unknown>;
      };
    };
  };
  const config = info.OCIv1.config;
  return {
    user: config.User ?? '',
    entrypoint: config.Entrypoint ?? [],
    cmd: config.Cmd ?? [],
    env: config.Env ?? [],
    workingDir: config.WorkingDir || '/',
    labels: config.Labels ?? {},
    exposedPorts: Object.keys(config.ExposedPorts ?? {}),
  };
}

/** Bytes in the image's root filesystem (apparent sizes), like an uncompressed pull would use. */
export async function imageBytes(image: string): Promise<number> {
  const id = (await buildah(['from', '--pull=never', image])).trim();
  try {
    const root = (await buildah(['mount', id])).trim();
    return Number((await command('du', ['-sbx', root])).split('\t')[0]);
  } finally {
    await buildah(['rm', id]);
  }
}

export interface RunOptions {
  /** Added to (and overriding) the image's env, like `docker run -e`. */
  env?: Record<string, string>;
  /** host path → container path, read-write, like `docker run -v`. */
  volumes?: Record<string, string>;
  /** Replaces the image's cmd, like arguments after the image name. */
  cmd?: string[];
  /** Replaces the image's entrypoint, like `docker run --entrypoint`. */
  entrypoint?: string[];
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class Container {
  private output = '';

  private constructor(
    readonly id: string,
    readonly root: string,
    private readonly child: ChildProcess,
    readonly exited: Promise<Exit>,
  ) {
    child.stdout!.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
  }

  static async run(image: string, options: RunOptions = {}): Promise<Container> {
    const config = await inspectImage(image);
    const id = (await buildah(['from', '--pull=never', image])).trim();
    const root = (await buildah(['mount', id])).trim();
    const userspec = config.user || '0:0';
    const env = new Map(config.env.map((entry) => [entry.slice(0, entry.indexOf('=')), entry.slice(entry.indexOf('=') + 1)]));
    for (const [key, value] of Object.entries(options.env ?? {})) env.set(key, value);
    const argv = [...(options.entrypoint ?? config.entrypoint), ...(options.cmd ?? config.cmd)];
    const volumes = Object.entries(options.volumes ?? {});
    // Positional parameters keep every path and value out of the shell's parsing.
    const script = [
      'set -eu',
      'root=$1; userspec=$2; workdir=$3; nvolumes=$4; shift 4',
      'mount --bind "$root" "$root"',
      'i=0; while [ "$i" -lt "$nvolumes" ]; do mkdir -p "$root$2"; mount --bind "$1" "$root$2"; shift 2; i=$((i+1)); done',
      'for file in /etc/hosts /etc/resolv.conf; do [ -e "$root$file" ] || touch "$root$file"; mount --bind "$file" "$root$file"; done',
      'mount -t proc proc "$root/proc"',
      'mount --rbind /dev "$root/dev"',
      'mount -o remount,bind,ro "$root"',
      'exec chroot --userspec="$userspec" "$root" /usr/bin/env -i -C "$workdir" "$@"',
    ].join('\n');
    const child = spawn(
      'unshare',
      [
        '--mount',
        '--pid',
        '--fork',
        '--propagation',
        'private',
        '--',
        'sh',
        '-c',
        script,
        'container',
        root,
        userspec,
        config.workingDir,
        String(volumes.length),
        ...volumes.flat(),
        ...[...env].map(([key, value]) => `${key}=${value}`),
        ...argv,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const exited = new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
    return new Container(id, root, child, exited);
  }

  /** Everything the container printed so far (stdout and stderr interleaved). */
  get logs(): string {
    return this.output;
  }

  /** The host pid of the container's PID 1 (the entrypoint), once it has started. */
  async pid1(): Promise<number> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const children = await readFile(`/proc/${this.child.pid}/task/${this.child.pid}/children`, 'utf8').catch(() => '');
      const pid = Number(children.trim().split(/\s+/)[0]);
      if (pid > 0) return pid;
      if (Date.now() > deadline) throw new Error(`container ${this.id} has no PID 1 after 10 s:\n${this.output}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }

  /** Sends a signal to PID 1, as `docker stop` / the kubelet do. */
  async signal(signal: NodeJS.Signals): Promise<void> {
    process.kill(await this.pid1(), signal);
  }

  /** Kills what is left and deletes the working container. */
  async remove(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const pid = await this.pid1().catch(() => null);
      if (pid) process.kill(pid, 'SIGKILL');
      await this.exited;
    }
    await buildah(['rm', this.id]).catch(() => undefined);
  }
}
