// The external tools the chart tests drive: helm and kustomize, pinned and installed by .ci/run.
import { execFile } from 'node:child_process';
import { access, constants } from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The Kubernetes version the chart is rendered for and validated against (kubernetes-models 5.1 = 1.34). */
export const KUBE_VERSION = '1.34.0';

const INSTALL_HINT = `install the pinned tools with
  GOBIN=\${TMPDIR:-/tmp}/baileys-keeper-ci-tools/bin go install helm.sh/helm/v4/cmd/helm@v4.3.1
  GOBIN=\${TMPDIR:-/tmp}/baileys-keeper-ci-tools/bin go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1
and put that directory on PATH (or set HELM and KUSTOMIZE to the binaries); .ci/run does this`;

async function executable(file: string): Promise<boolean> {
  return access(file, constants.X_OK).then(
    () => true,
    () => false,
  );
}

/** The binary named by `envName`, else `name` on PATH; throws saying how to install it when neither exists. */
export async function findTool(name: 'helm' | 'kustomize', envName: 'HELM' | 'KUSTOMIZE'): Promise<string> {
  const fromEnv = process.env[envName];
  if (fromEnv) {
    if (await executable(fromEnv)) return fromEnv;
    throw new Error(`${envName}=${fromEnv} is not an executable file: ${INSTALL_HINT}`);
  }
  for (const dir of (process.env['PATH'] ?? '').split(path.delimiter)) {
    if (dir && (await executable(path.join(dir, name)))) return path.join(dir, name);
  }
  throw new Error(`${name} is not on PATH: ${INSTALL_HINT}`);
}

/** Runs a tool and returns its stdout; a failure carries its stderr. */
export async function tool(file: string, args: string[], cwd?: string): Promise<string> {
  try {
    const { stdout } = await run(file, args, { cwd, maxBuffer: 64 * 1024 * 1024 });
    return stdout;
  } catch (error) {
    const failed = error as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${path.basename(file)} ${args.join(' ')} failed: ${failed.stderr || failed.stdout || failed.message}`, {
      cause: error,
    });
  }
}
