// Start-up check that `exec` can be run, like execvp would find it: a missing worker binary is
// a config error (exit 2), not a restart loop.
import { accessSync, constants, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export function findExecutable(exec: string, pathVariable = process.env.PATH ?? ""): { ok: true; path: string } | { ok: false; reason: string } {
  const candidates = exec.includes("/") ? [exec] : pathVariable.split(delimiter).filter(Boolean).map((folder) => join(folder, exec));
  let reason = exec.includes("/") ? "no such file" : "not found in PATH";
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) {
        reason = "not a file";
        continue;
      }
      accessSync(candidate, constants.X_OK);
      return { ok: true, path: candidate };
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EACCES") reason = "not executable (check its permissions)";
    }
  }
  return { ok: false, reason };
}
