// Filled in by scripts/build.mjs (esbuild `define`); the fallbacks are for `tsx` and tests.
declare const __MONOCEROS_VERSION__: string | undefined;
declare const __MONOCEROS_REVISION__: string | undefined;
declare const __MONOCEROS_BRANCH__: string | undefined;

export const BUILD_INFO = {
  version: typeof __MONOCEROS_VERSION__ === "string" ? __MONOCEROS_VERSION__ : "dev",
  revision: typeof __MONOCEROS_REVISION__ === "string" ? __MONOCEROS_REVISION__ : "unknown",
  branch: typeof __MONOCEROS_BRANCH__ === "string" ? __MONOCEROS_BRANCH__ : "unknown",
} as const;
