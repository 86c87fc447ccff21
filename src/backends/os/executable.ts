// Start-up check that `exec` can be run, like execvp would find it: a missing worker binary, or a
// script whose `#!` interpreter is missing, is a config error (exit 2), not a restart loop on
// `spawn ENOENT`.
import { accessSync, closeSync, constants, openSync, readSync, statSync } from "node:fs";
import { delimiter, join } from "node:path";

export type Found = { ok: true; path: string } | { ok: false; reason: string };

/**
 * Bytes of a script's first line the kernel reads (BINPRM_BUF_SIZE on Linux since 5.1): the
 * interpreter must be named within them.
 */
export const SHEBANG_BYTES_MAX = 256;

/** Interpreters that are scripts themselves: Linux follows at most this many (checked on 6.x). */
const INTERPRETER_DEPTH_MAX = 4;

export function findExecutable(exec: string, pathVariable = process.env.PATH ?? ""): Found {
  return findAt(exec, !exec.includes("/"), pathVariable, 0);
}

/** `inPath`: look `exec` up in PATH (a name without a slash, except a #! interpreter: that is always a path). */
function findAt(exec: string, inPath: boolean, pathVariable: string, depth: number): Found {
  const candidates = inPath ? pathVariable.split(delimiter).filter(Boolean).map((folder) => join(folder, exec)) : [exec];
  let reason = inPath ? "not found in PATH" : "no such file";
  for (const candidate of candidates) {
    try {
      if (!statSync(candidate).isFile()) {
        reason = "not a file";
        continue;
      }
      accessSync(candidate, constants.X_OK);
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      if (code === "EACCES") reason = "not executable (check its permissions)";
      continue;
    }
    // The first candidate that is an executable file is the one execvp runs, working or not.
    const problem = interpreterProblem(candidate, pathVariable, depth);
    return problem === null ? { ok: true, path: candidate } : { ok: false, reason: problem };
  }
  return { ok: false, reason };
}

/** What is wrong with the `#!` line of the file at `path`, or null (fine, no such line, or cannot tell). */
function interpreterProblem(path: string, pathVariable: string, depth: number): string | null {
  const line = readShebang(path);
  if (line === null) return null;
  const shebang = parseShebang(line);
  if (shebang === null) return `its #! line names no interpreter`;
  const carriageReturn = shebang.interpreter.endsWith("\r") || shebang.argument?.endsWith("\r") === true
    ? " (the #! line ends in a carriage return: the file has Windows line endings)"
    : "";
  if (depth > INTERPRETER_DEPTH_MAX) return `its #! interpreters are nested more than ${INTERPRETER_DEPTH_MAX} deep`;
  const interpreter = findAt(shebang.interpreter, false, pathVariable, depth + 1);
  if (!interpreter.ok) return `its interpreter ${JSON.stringify(shebang.interpreter)} (from its #! line) cannot be run: ${interpreter.reason}${carriageReturn}`;
  const command = envCommand(shebang);
  if (command === null) return null;
  const found = findAt(command, !command.includes("/"), pathVariable, depth + 1);
  if (!found.ok) return `its interpreter ${JSON.stringify(command)} (from "#!${line.trim()}") cannot be run: ${found.reason}${carriageReturn}`;
  return null;
}

/** The first line when the file starts with `#!` (at most SHEBANG_BYTES_MAX bytes), else null; null too when it cannot be read. */
export function readShebang(path: string): string | null {
  let fd: number | undefined;
  try {
    fd = openSync(path, "r");
    const buffer = Buffer.alloc(SHEBANG_BYTES_MAX);
    let length = 0;
    for (let bytesRead = -1; bytesRead !== 0 && length < buffer.length; length += bytesRead) {
      bytesRead = readSync(fd, buffer, length, buffer.length - length, null);
    }
    if (length < 2 || buffer[0] !== 0x23 || buffer[1] !== 0x21) return null;
    const newline = buffer.subarray(0, length).indexOf(0x0a);
    return buffer.toString("utf8", 2, newline === -1 ? length : newline);
  } catch {
    // Not readable by us (execute-only), or no file descriptor left (EMFILE): the spawn will tell.
    return null;
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

export interface Shebang {
  interpreter: string;
  /** Linux passes the rest of the line, trimmed, as one argument. */
  argument: string | null;
}

/** `#!` line as Linux reads it: the interpreter up to the first blank, the rest as one argument. */
export function parseShebang(line: string): Shebang | null {
  const text = line.replace(/^[ \t]+/, "").replace(/[ \t]+$/, "");
  if (text === "") return null;
  const blank = text.search(/[ \t]/);
  if (blank === -1) return { interpreter: text, argument: null };
  return { interpreter: text.slice(0, blank), argument: text.slice(blank).replace(/^[ \t]+/, "") };
}

/**
 * The command `#!/usr/bin/env command` or `#!/usr/bin/env -S [NAME=value…] command [args]` runs,
 * to be looked up in PATH; null when the interpreter is not env or its options are more than this
 * understands (no false alarm then). Without -S, Linux hands env the rest of the line as one
 * argument: `#!/usr/bin/env python3 -u` makes env look for a program named "python3 -u".
 */
export function envCommand(shebang: Shebang): string | null {
  const { interpreter, argument } = shebang;
  if (!/(^|\/)env$/.test(interpreter) || argument === null) return null;
  const split = /^(-S|--split-string)([ \t=]|$)/.exec(argument);
  const words = split === null ? [argument] : argument.slice(split[1]?.length).replace(/^=/, "").trim().split(/[ \t]+/);
  for (const word of words) {
    if (/^[A-Za-z_][A-Za-z0-9_]*=/.test(word)) continue; // NAME=value
    // Another option (-i, -u NAME, …): not worth guessing at.
    return word === "" || word.startsWith("-") ? null : word;
  }
  return null;
}
