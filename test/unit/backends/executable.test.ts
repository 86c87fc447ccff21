import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { envCommand, findExecutable, parseShebang, readShebang, SHEBANG_BYTES_MAX } from "../../../src/backends/os/executable.js";

const folder = mkdtempSync(join(tmpdir(), "monoceros-exec-"));
/** A file in the temp folder, executable unless mode says otherwise. */
function file(name: string, text: string, mode = 0o755): string {
  const path = join(folder, name);
  writeFileSync(path, text);
  chmodSync(path, mode);
  return path;
}
const PATH = process.env.PATH ?? "";

describe("start-up check of a script's #! interpreter", () => {
  it("accepts a script whose interpreter exists, a binary, and an env lookup that resolves", () => {
    expect(findExecutable(file("ok.sh", "#!/bin/sh\necho hi\n"))).toMatchObject({ ok: true });
    expect(findExecutable(file("spaced.sh", "#!  /bin/sh  -e  \necho hi\n"))).toMatchObject({ ok: true });
    expect(findExecutable(process.execPath)).toMatchObject({ ok: true });
    expect(findExecutable(file("env.js", "#!/usr/bin/env node\n"), PATH)).toMatchObject({ ok: true });
    expect(findExecutable(file("env-s.py", "#!/usr/bin/env -S FOO=1 sh -e\n"), PATH)).toMatchObject({ ok: true });
    expect(findExecutable(file("plain.txt", "no shebang at all\n"))).toMatchObject({ ok: true }); // not ours to judge: the kernel says ENOEXEC
  });

  it("rejects a script whose interpreter does not exist, naming the interpreter", () => {
    const script = file("missing.sh", "#!/nonexistent/bash\necho hi\n");
    expect(findExecutable(script)).toEqual({ ok: false, reason: 'its interpreter "/nonexistent/bash" (from its #! line) cannot be run: no such file' });
  });

  it("rejects a script whose interpreter is not executable, or not a file", () => {
    const interpreter = file("not-executable-interpreter", "#!/bin/sh\n", 0o644);
    expect(findExecutable(file("uses-it.sh", `#!${interpreter}\n`))).toEqual({
      ok: false,
      reason: `its interpreter ${JSON.stringify(interpreter)} (from its #! line) cannot be run: not executable (check its permissions)`,
    });
    mkdirSync(join(folder, "a-folder"), { recursive: true });
    expect(findExecutable(file("folder.sh", `#!${join(folder, "a-folder")}\n`))).toMatchObject({ ok: false, reason: expect.stringContaining("not a file") });
  });

  it("looks env's command up in PATH", () => {
    expect(findExecutable(file("py.sh", "#!/usr/bin/env no-such-python3\nprint(1)\n"), PATH)).toEqual({
      ok: false,
      reason: 'its interpreter "no-such-python3" (from "#!/usr/bin/env no-such-python3") cannot be run: not found in PATH',
    });
    expect(findExecutable(file("node.sh", "#!/usr/bin/env node\n"), "/nowhere")).toMatchObject({ ok: false, reason: expect.stringContaining('"node"') });
  });

  it("points at Windows line endings", () => {
    const result = findExecutable(file("crlf.sh", "#!/bin/sh\r\necho hi\r\n"));
    expect(result).toEqual({
      ok: false,
      reason: 'its interpreter "/bin/sh\\r" (from its #! line) cannot be run: no such file (the #! line ends in a carriage return: the file has Windows line endings)',
    });
  });

  it("follows an interpreter that is itself a script, a bounded number of levels", () => {
    const inner = file("inner-interpreter", "#!/nonexistent\n");
    expect(findExecutable(file("outer.sh", `#!${inner}\n`))).toMatchObject({ ok: false, reason: expect.stringContaining('"/nonexistent"') });
    // level-k's interpreter is level-(k-1); level-0's is /bin/sh. Linux runs level-4 and refuses level-5.
    const levels = [file("level-0", "#!/bin/sh\n")];
    for (let level = 1; level <= 5; level++) levels.push(file(`level-${level}`, `#!${levels[level - 1]}\n`));
    expect(findExecutable(levels[4] as string)).toMatchObject({ ok: true });
    expect(findExecutable(levels[5] as string)).toMatchObject({ ok: false, reason: expect.stringContaining("nested more than 4 deep") });
  });

  it("reads a bounded number of bytes, and reads nothing into files without #!", () => {
    expect(readShebang(file("long.sh", `#!/bin/${"x".repeat(10_000)}\n`))).toHaveLength(SHEBANG_BYTES_MAX - 2);
    expect(readShebang(file("elf", "\x7fELF..."))).toBeNull();
    expect(readShebang(file("empty", ""))).toBeNull();
    expect(readShebang(join(folder, "does-not-exist"))).toBeNull();
  });

  it("parses the #! line as Linux does, and env's command as env does", () => {
    expect(parseShebang(" /bin/sh -e -x ")).toEqual({ interpreter: "/bin/sh", argument: "-e -x" });
    expect(parseShebang("/bin/sh")).toEqual({ interpreter: "/bin/sh", argument: null });
    expect(parseShebang("   ")).toBeNull();
    const env = (argument: string) => envCommand({ interpreter: "/usr/bin/env", argument });
    expect(env("python3")).toBe("python3");
    expect(env("python3 -u")).toBe("python3 -u"); // one argument without -S: env looks for "python3 -u"
    expect(env("-S python3 -u")).toBe("python3");
    expect(env("-S PYTHONUNBUFFERED=1 python3")).toBe("python3");
    expect(env("--split-string=python3 -u")).toBe("python3");
    expect(env("-i python3")).toBeNull(); // options: no guessing
    expect(envCommand({ interpreter: "/bin/sh", argument: "-e" })).toBeNull();
  });
});
