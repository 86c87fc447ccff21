// A fatal exit must not lose the records still buffered for a slow reader. Each case runs
// test/fixtures/output-channel-exit.ts in a child: a burst of records, then process.exit as on a
// fatal error; its stdout is a pipe or a file (the burst outruns both: most of it is still
// buffered at the exit).
import { spawn } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = resolve(new URL("../../..", import.meta.url).pathname);
const FIXTURE = join(ROOT, "test/fixtures/output-channel-exit.ts");
const RECORDS = 50_000; // about 6 MB: a hundred times what a pipe holds

/** `readAfterMs`: a slow reader, which starts reading the pipe only that long after the start. */
function runFixture(mode: "flush" | "none", stdout: "pipe" | number, readAfterMs = 0): Promise<{ code: number | null; output: string }> {
  const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, String(RECORDS), mode], { cwd: ROOT, stdio: ["ignore", stdout, "inherit"] });
  let output = "";
  if (child.stdout !== null) {
    const readable = child.stdout;
    readable.setEncoding("utf8").on("data", (chunk: string) => (output += chunk));
    if (readAfterMs > 0) {
      readable.pause();
      setTimeout(() => readable.resume(), readAfterMs);
    }
  }
  return new Promise((resolveRun) => child.on("close", (code) => resolveRun({ code, output })));
}

/** The record numbers in the output, in order. */
function numbers(output: string): number[] {
  return output.split("\n").filter(Boolean).map((line) => (JSON.parse(line) as { n: number }).n);
}

const everyRecord = Array.from({ length: RECORDS }, (_, n) => n);

describe("Monoceros's output at a fatal exit", () => {
  it("to a pipe: flushSyncForExit writes every buffered record, once, in order", async () => {
    const { code, output } = await runFixture("flush", "pipe");
    expect(code).toBe(1);
    expect(numbers(output)).toEqual(everyRecord);
  });

  it("to a pipe whose reader is slow: flushSyncForExit waits for it (bounded) and still writes every record", async () => {
    const { code, output } = await runFixture("flush", "pipe", 1_000);
    expect(code).toBe(1);
    expect(numbers(output)).toEqual(everyRecord);
  });

  it("to a pipe: without it, the records still buffered are lost (what the fatal path used to do)", async () => {
    const { output } = await runFixture("none", "pipe");
    expect(numbers(output).length).toBeLessThan(RECORDS);
  });

  it("to a file: flushSyncForExit writes every buffered record; without it they are lost", async () => {
    const run = async (mode: "flush" | "none") => {
      const path = join(mkdtempSync(join(tmpdir(), "monoceros-output-")), "stdout.log");
      const fd = openSync(path, "w");
      try {
        expect((await runFixture(mode, fd)).code).toBe(1);
      } finally {
        closeSync(fd);
      }
      return numbers(readFileSync(path, "utf8"));
    };
    expect(await run("flush")).toEqual(everyRecord);
    expect((await run("none")).length).toBeLessThan(RECORDS);
  });
});
