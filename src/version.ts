/** The package version, fixed at build time (see scripts/generate-sources.mjs). */
export { PACKAGE_VERSION as VERSION } from './generated/version.js';
