// `monoceros schema`: the config's JSON Schema on stdout, as the repository ships it.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../../src/cli/main.js";
import { SCHEMA_FILE } from "../../../src/config/json-schema.js";

async function run(...argv: string[]) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await main(argv, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line) });
  return { code, stdout, stderr };
}

describe("monoceros schema", () => {
  it("prints the JSON Schema of the config, byte for byte the shipped file, and exits 0", async () => {
    const result = await run("schema");
    expect(result.code).toBe(0);
    expect(result.stderr).toEqual([]);
    expect(`${result.stdout.join("\n")}\n`).toBe(readFileSync(SCHEMA_FILE, "utf8"));
    expect(JSON.parse(result.stdout.join("\n"))).toMatchObject({ $schema: "http://json-schema.org/draft-07/schema#", title: "Monoceros config" });
  });

  it("has --help, and refuses arguments it does not know (exit 2)", async () => {
    const help = await run("schema", "--help");
    expect(help.code).toBe(0);
    expect(help.stdout.join("\n")).toContain("yaml-language-server");
    const bad = await run("schema", "extra");
    expect(bad.code).toBe(2);
    expect(bad.stderr.join("\n")).toMatch(/^monoceros schema: .*\(see monoceros schema --help\)$/);
  });
});
