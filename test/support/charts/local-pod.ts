// Runs a rendered pod spec the way the kubelet does, with real processes on this machine:
//  - init containers in order: a regular one must exit 0 before the next starts; one with
//    restartPolicy Always (a native sidecar) is started and must pass its startup probe first;
//  - then every regular container at once;
//  - termination: each regular container's preStop hook (an exec command, run as a process), then its
//    SIGTERM, all containers at once; native sidecars get theirs (preStop, then SIGTERM) only after
//    every regular container has exited, in reverse order, as Kubernetes 1.29+ does; whatever still runs
//    when terminationGracePeriodSeconds (counted from the start, preStop hooks included) is over gets
//    SIGKILL.
// Keeper containers run as `node dist/cli.js <args>` with their rendered env; volume mount paths are
// mapped into a temp dir, and the listen address is moved to a free loopback port.
import { spawn, type ChildProcess } from 'node:child_process';
import { collect, startCli } from '../../../harness/cli.js';
import { startService, waitFor, type Service } from '../../../harness/sidecar.js';
import {
  allContainers,
  hostPath,
  mapEnvPaths,
  materialiseVolumes,
  resolveEnv,
  workloadPodSpec,
  type Container,
  type PodSpec,
} from './pod.js';
import type { K8sObject } from './render.js';

/** Starts the process of a non-keeper container (the user's bot) given its auth directory on the host. */
export type StartBot = (container: Container, hostDir: (inside: string) => string) => ChildProcess;

interface Running {
  name: string;
  child: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  service?: Service;
}

// A keeper image by tag or by digest (image.initDigest, image.sidecarDigest).
const KEEPER_IMAGE = /\/baileys-keeper-(init|sidecar)[:@]/;

export class LocalPod {
  /** What happened, in order: "<container> started", "<container> exited <code|signal>", "<container> preStop",
   *  "<container> preStop done", "<container> SIGTERM", "<container> SIGKILL". */
  readonly events: string[] = [];
  private readonly nativeSidecars: Running[] = [];
  private readonly regular: Running[] = [];

  private constructor(
    readonly spec: PodSpec,
    private readonly objects: K8sObject[],
    private readonly volumes: Map<string, string>,
  ) {}

  static async create(objects: K8sObject[], root: string): Promise<LocalPod> {
    const spec = workloadPodSpec(objects);
    return new LocalPod(spec, objects, await materialiseVolumes(spec, objects, root));
  }

  /** The host path of `inside` as container `name` sees it. */
  hostPath(name: string, inside: string): string {
    const mapped = hostPath(this.container(name), this.volumes, inside);
    if (!mapped) throw new Error(`${inside} is on no volume of ${name}`);
    return mapped;
  }

  container(name: string): Container {
    const found = allContainers(this.spec).find((candidate) => candidate.name === name);
    if (!found) throw new Error(`no container ${name}`);
    return found;
  }

  /** A keeper container's env as the process gets it. */
  env(container: Container): Record<string, string> {
    return mapEnvPaths(container, this.volumes, resolveEnv(container, this.objects));
  }

  /** The HTTP service of a running keeper container. */
  service(name: string): Service {
    const running = [...this.nativeSidecars, ...this.regular].find((candidate) => candidate.name === name);
    if (!running?.service) throw new Error(`${name} is not a running keeper with HTTP`);
    return running.service;
  }

  /** Starts the pod; resolves once every regular container has been started. */
  async start(startBot: StartBot): Promise<void> {
    for (const init of this.spec.initContainers ?? []) {
      if (init.restartPolicy === 'Always') {
        const running = await this.startKeeper(init);
        this.nativeSidecars.push(running);
        await this.startupProbe(init, running);
      } else {
        await this.runToCompletion(init);
      }
    }
    await Promise.all(
      this.spec.containers.map(async (each) => {
        if (KEEPER_IMAGE.test(each.image)) {
          this.regular.push(await this.startKeeper(each));
        } else {
          const child = startBot(each, (inside) => this.hostPath(each.name, inside));
          this.events.push(`${each.name} started`);
          this.regular.push({ name: each.name, child, exited: this.watchExit(each.name, child) });
        }
      }),
    );
  }

  /** Terminates the pod in Kubernetes' order; resolves with each container's exit. */
  async terminate(): Promise<Map<string, { code: number | null; signal: NodeJS.Signals | null }>> {
    const ends = new Map<string, { code: number | null; signal: NodeJS.Signals | null }>();
    const everyone = [...this.regular, ...this.nativeSidecars];
    const graceMs = (this.spec.terminationGracePeriodSeconds ?? 30) * 1000;
    const deadline = setTimeout(() => {
      for (const running of everyone) {
        if (ends.has(running.name) || running.child.exitCode !== null || running.child.signalCode !== null) continue;
        this.events.push(`${running.name} SIGKILL`);
        running.child.kill('SIGKILL');
      }
    }, graceMs);
    const stop = async (running: Running) => {
      await this.preStop(running);
      this.events.push(`${running.name} SIGTERM`);
      running.child.kill('SIGTERM');
      ends.set(running.name, await running.exited);
    };
    try {
      await Promise.all(this.regular.map(stop));
      for (const sidecar of [...this.nativeSidecars].reverse()) await stop(sidecar);
    } finally {
      clearTimeout(deadline);
    }
    return ends;
  }

  /** SIGKILLs whatever still runs (after a failed assertion: live processes would keep the test file open). */
  kill(): void {
    for (const running of [...this.regular, ...this.nativeSidecars]) {
      if (running.child.exitCode === null && running.child.signalCode === null) running.child.kill('SIGKILL');
    }
  }

  /** Runs the container's preStop exec hook (a keeper image has only `node`), as the kubelet does before SIGTERM. */
  private async preStop(running: Running): Promise<void> {
    const command = this.container(running.name).lifecycle?.preStop?.exec?.command;
    if (!command) return;
    const [program, ...args] = command;
    if (program !== 'node') throw new Error(`${running.name}: preStop runs ${program}; only node commands can run here`);
    this.events.push(`${running.name} preStop`);
    const hook = await collect(spawn(process.execPath, args, { stdio: ['pipe', 'pipe', 'pipe'] }), {
      timeoutMs: (this.spec.terminationGracePeriodSeconds ?? 30) * 1000,
    });
    this.events.push(`${running.name} preStop done ${hook.code}`);
  }

  private async runToCompletion(init: Container): Promise<void> {
    if (!KEEPER_IMAGE.test(init.image)) throw new Error(`init container ${init.name} runs ${init.image}, not a keeper image`);
    this.events.push(`${init.name} started`);
    const result = await collect(startCli(init.args ?? [], { env: this.env(init) }));
    this.events.push(`${init.name} exited ${result.code}`);
    if (result.code !== 0)
      throw new Error(`init container ${init.name} exited ${result.code}: the pod would not start\n${result.stdout}${result.stderr}`);
  }

  private async startKeeper(each: Container): Promise<Running> {
    this.events.push(`${each.name} started`);
    // startService listens on a free loopback port (a flag beats KEEPER_LISTEN): the pod's port 9464 is
    // this machine's, shared with other test runs.
    const service = await startService(each.args ?? [], this.env(each));
    return { name: each.name, child: service.child, service, exited: this.watchExit(each.name, service.child, service.exited) };
  }

  private async startupProbe(each: Container, running: Running): Promise<void> {
    const probePath = each.startupProbe?.httpGet?.path;
    if (!probePath) return;
    await waitFor(
      async () => ((await running.service!.get(probePath)).status === 200 ? true : null),
      60_000,
      () => `${each.name} startup probe ${probePath}:\n${running.service!.output.join('\n')}`,
      running.exited,
    );
    this.events.push(`${each.name} probe passed`);
  }

  private watchExit(name: string, child: ChildProcess, exited?: Promise<{ code: number | null; signal: NodeJS.Signals | null }>) {
    const done =
      exited ??
      new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
        child.once('exit', (code, signal) => resolve({ code, signal })),
      );
    return done.then((end) => {
      this.events.push(`${name} exited ${end.code ?? end.signal}`);
      return end;
    });
  }
}
