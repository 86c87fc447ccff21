import { describe, expect, it } from "vitest";
import {
  dataLine,
  errorLine,
  formatTarget,
  LOG_LINES_DEFAULT,
  okLine,
  outputLine,
  parseRequest,
  parseResponseLine,
  parseTarget,
  recordLine,
  REQUEST_BYTES_MAX,
  requestLine,
  resolveTarget,
  type ControlRequest,
} from "../../../src/control/protocol.js";

const error = (line: string) => {
  const parsed = parseRequest(line);
  if (parsed.ok) throw new Error(`expected an error for ${line}`);
  return parsed.error;
};

describe("control protocol: targets", () => {
  it("reads a pool, a worker by index and a worker by worker id", () => {
    expect(parseTarget("web")).toEqual({ ok: true, value: { pool: "web", worker: null } });
    expect(parseTarget("web/2")).toEqual({ ok: true, value: { pool: "web", worker: 2 } });
    expect(parseTarget("web-2")).toEqual({ ok: true, value: { pool: "web", worker: "web-2" } });
    expect(parseTarget("my-api.v2/0")).toEqual({ ok: true, value: { pool: "my-api.v2", worker: 0 } });
    expect(parseTarget("a-1-0")).toEqual({ ok: true, value: { pool: "a-1", worker: "a-1-0" } });
  });

  it("refuses what no pool or worker can be called, saying what a target looks like", () => {
    expect(parseTarget("")).toMatchObject({ ok: false, error: expect.stringContaining("must name a pool (web)") });
    expect(parseTarget("web/x")).toEqual({ ok: false, error: 'target: the worker index after \'/\' must be an integer from 0 to 4095, got "web/x"' });
    expect(parseTarget("web/4096")).toMatchObject({ ok: false });
    expect(parseTarget("web/1/2")).toMatchObject({ ok: false });
    expect(parseTarget("/2")).toMatchObject({ ok: false, error: expect.stringContaining("is not a pool") });
    expect(parseTarget("we b")).toMatchObject({ ok: false });
    expect(parseTarget("x".repeat(100))).toMatchObject({ ok: false, error: expect.stringContaining("at most 72 characters") });
  });

  it("formats a target back as it was written", () => {
    for (const text of ["web", "web/2", "web-2", "a-1-0"]) {
      const parsed = parseTarget(text);
      expect(parsed.ok && formatTarget(parsed.value)).toBe(text);
    }
  });

  it("resolves a worker id against the pools, a pool named like it winning", () => {
    const pools = [
      { name: "web", replicas: 3 },
      { name: "web-2", replicas: 1 },
    ];
    expect(resolveTarget({ pool: "web", worker: "web-1" }, pools)).toEqual({ ok: true, value: { pool: "web", worker: 1 } });
    expect(resolveTarget({ pool: "web", worker: "web-2" }, pools)).toEqual({ ok: true, value: { pool: "web-2", worker: null } });
    expect(resolveTarget({ pool: "web", worker: 2 }, pools)).toEqual({ ok: true, value: { pool: "web", worker: 2 } });
    expect(resolveTarget({ pool: "web", worker: 3 }, pools)).toEqual({ ok: false, error: "pool web has 3 workers (web/0 to web/2), got web/3" });
    expect(resolveTarget({ pool: "api", worker: null }, pools)).toEqual({ ok: false, error: "no pool named api (pools: web, web-2)" });
    expect(resolveTarget({ pool: "api", worker: "api-0" }, pools)).toEqual({ ok: false, error: "no pool or worker named api-0 (pools: web, web-2)" });
  });
});

describe("control protocol: requests", () => {
  it("reads every command, with the logs defaults filled in", () => {
    expect(parseRequest('{"command":"status"}')).toEqual({ ok: true, value: { command: "status" } });
    expect(parseRequest('{"command":"reload"}')).toEqual({ ok: true, value: { command: "reload" } });
    expect(parseRequest('{"command":"restart","target":"web/2"}')).toEqual({ ok: true, value: { command: "restart", target: { pool: "web", worker: 2 } } });
    expect(parseRequest('{"command":"scale","pool":"web","replicas":4}')).toEqual({ ok: true, value: { command: "scale", pool: "web", replicas: 4 } });
    expect(parseRequest('{"command":"logs"}')).toEqual({ ok: true, value: { command: "logs", target: null, follow: false, lines: LOG_LINES_DEFAULT } });
    expect(parseRequest(' {"command":"logs","target":"web-1","follow":true,"lines":0}\r')).toEqual({
      ok: true,
      value: { command: "logs", target: { pool: "web", worker: "web-1" }, follow: true, lines: 0 },
    });
  });

  it("names the known commands when the command is missing or unknown", () => {
    expect(error("{}")).toBe("command: missing; known commands: status, restart, scale, reload, logs, debug, profile");
    expect(error('{"command":"stop"}')).toBe('command: unknown command "stop"; known commands: status, restart, scale, reload, logs, debug, profile');
    expect(error('{"command":7}')).toBe("command: unknown command 7; known commands: status, restart, scale, reload, logs, debug, profile");
  });

  it("names the field that is wrong, and what it must be", () => {
    expect(error('{"command":"scale","pool":"web","replicas":4.5}')).toBe("replicas: must be an integer from 0 to 4096, got 4.5");
    expect(error('{"command":"scale","pool":"web","replicas":4097}')).toBe("replicas: must be an integer from 0 to 4096, got 4097");
    expect(error('{"command":"scale","pool":"web","replicas":"4"}')).toBe('replicas: must be an integer from 0 to 4096, got "4"');
    expect(error('{"command":"scale","pool":"web"}')).toBe("replicas: must be an integer from 0 to 4096, got nothing");
    expect(error('{"command":"scale","pool":"","replicas":1}')).toBe("pool: must be a pool name (letters, digits, '_', '.' and '-'), got \"\"");
    expect(error('{"command":"restart"}')).toBe('target: must be a string such as "web", "web/2" or "web-2", got nothing');
    expect(error('{"command":"logs","lines":10001}')).toBe("lines: must be an integer from 0 to 10000, got 10001");
    expect(error('{"command":"logs","follow":"yes"}')).toBe('follow: must be true or false, got "yes"');
    expect(error('{"command":"status","target":"web"}')).toBe('status: unknown field "target" (status takes command)');
  });

  it("refuses what is not one JSON object, in one line", () => {
    expect(error("[]")).toBe("request: must be a JSON object, got an array");
    expect(error("null")).toBe("request: must be a JSON object, got null");
    const notJson = error("status");
    expect(notJson).toMatch(/^request: not valid JSON \(/);
    expect(notJson).not.toContain("\n");
  });

  it("refuses a request longer than 64 KiB", () => {
    const line = JSON.stringify({ command: "restart", target: "x".repeat(REQUEST_BYTES_MAX) });
    expect(error(line)).toBe("request too long: more than 65536 bytes on one line");
  });

  it("encodes requests so that they parse back to themselves", () => {
    const requests: ControlRequest[] = [
      { command: "status" },
      { command: "reload" },
      { command: "restart", target: { pool: "web", worker: null } },
      { command: "restart", target: { pool: "web", worker: 3 } },
      { command: "restart", target: { pool: "web", worker: "web-3" } },
      { command: "scale", pool: "web", replicas: 0 },
      { command: "logs", target: null, follow: true, lines: 5 },
      { command: "logs", target: { pool: "web", worker: 1 }, follow: false, lines: 100 },
      { command: "debug", target: { pool: "web", worker: 2 }, name: "stack", timeoutMs: 30_000, clientPid: 4242 },
      { command: "debug", target: { pool: "web", worker: "web-0" }, name: "proc", timeoutMs: 100, clientPid: null },
      { command: "profile", kind: "cpu", durationMs: 10_000, clientPid: 17 },
      { command: "profile", kind: "heap", durationMs: null, clientPid: null },
    ];
    for (const request of requests) {
      const line = requestLine(request);
      expect(line.endsWith("\n") && !line.slice(0, -1).includes("\n")).toBe(true);
      expect(parseRequest(line.slice(0, -1))).toEqual({ ok: true, value: request });
    }
    expect(requestLine({ command: "restart", target: { pool: "web", worker: 2 } })).toBe('{"command":"restart","target":"web/2"}\n');
  });
});

describe("control protocol: responses", () => {
  it("writes one line per answer, errors flattened to one line", () => {
    expect(okLine({ plan: ["a"] })).toBe('{"ok":true,"result":{"plan":["a"]}}\n');
    expect(okLine(undefined)).toBe('{"ok":true,"result":null}\n');
    expect(errorLine("no pool\n  named x")).toBe('{"ok":false,"error":"no pool named x"}\n');
    expect(recordLine({ msg: "hi" })).toBe('{"record":{"msg":"hi"}}\n');
  });

  it("reads answer lines back, and refuses anything else", () => {
    expect(parseResponseLine(okLine(1).trim())).toEqual({ ok: true, value: { ok: true, result: 1 } });
    expect(parseResponseLine(errorLine("no").trim())).toEqual({ ok: true, value: { ok: false, error: "no" } });
    expect(parseResponseLine(recordLine({ a: 1 }).trim())).toEqual({ ok: true, value: { record: { a: 1 } } });
    expect(parseResponseLine("HTTP/1.1 400")).toMatchObject({ ok: false });
    expect(parseResponseLine('{"ok":false}')).toMatchObject({ ok: false });
    expect(parseResponseLine('{"record":[1]}')).toMatchObject({ ok: false });
  });

  it("carries a debug command's output lines, marked by stream, and a profile's data pieces", () => {
    expect(outputLine("stderr", "oops\t1")).toBe('{"output":{"stream":"stderr","text":"oops\\t1"}}\n');
    expect(parseResponseLine(outputLine("stdout", "#0 epoll_wait").trim())).toEqual({ ok: true, value: { output: { stream: "stdout", text: "#0 epoll_wait" } } });
    expect(parseResponseLine(dataLine('{"snapshot":').trim())).toEqual({ ok: true, value: { data: '{"snapshot":' } });
    expect(parseResponseLine('{"output":{"stream":"stdin","text":"x"}}')).toMatchObject({ ok: false });
    expect(parseResponseLine('{"output":{"stream":"stdout"}}')).toMatchObject({ ok: false });
    expect(parseResponseLine('{"data":7}')).toMatchObject({ ok: false });
  });
});

describe("control protocol: debug and profile", () => {
  it("reads debug with the default timeout, and profile of either kind", () => {
    expect(parseRequest('{"command":"debug","target":"web/1","name":"stack"}')).toEqual({
      ok: true,
      value: { command: "debug", target: { pool: "web", worker: 1 }, name: "stack", timeoutMs: 30_000, clientPid: null },
    });
    expect(parseRequest('{"command":"debug","target":"web-1","name":"py.spy_2","timeout_ms":300000,"client_pid":99}')).toMatchObject({ ok: true, value: { name: "py.spy_2", timeoutMs: 300_000, clientPid: 99 } });
    expect(parseRequest('{"command":"profile","kind":"cpu","duration_ms":100}')).toEqual({ ok: true, value: { command: "profile", kind: "cpu", durationMs: 100, clientPid: null } });
    expect(parseRequest('{"command":"profile","kind":"heap"}')).toEqual({ ok: true, value: { command: "profile", kind: "heap", durationMs: null, clientPid: null } });
  });

  it("refuses a pool as a debug target, bad names, and timeouts or durations out of bounds", () => {
    expect(error('{"command":"debug","target":"web","name":"stack"}')).toBe('target: debug needs a worker (web/0 or web-0), got the pool "web"');
    expect(error('{"command":"debug","target":"web/0"}')).toMatch(/^name: must be the name of one of the pool's debug commands, or proc .* got nothing$/);
    expect(error('{"command":"debug","target":"web/0","name":"-rf"}')).toMatch(/^name: .* got "-rf"$/);
    expect(error('{"command":"debug","target":"web/0","name":"stack","timeout_ms":300001}')).toBe("timeout_ms: must be an integer from 100 to 300000, got 300001");
    expect(error('{"command":"debug","target":"web/0","name":"stack","timeout_ms":99}')).toBe("timeout_ms: must be an integer from 100 to 300000, got 99");
    expect(error('{"command":"debug","target":"web/0","name":"stack","client_pid":0}')).toBe("client_pid: must be an integer from 1 to 4194304, got 0");
    expect(error('{"command":"debug","target":"web/0","name":"stack","argv":["sh"]}')).toBe('debug: unknown field "argv" (debug takes command, target, name, timeout_ms, client_pid)');
    expect(error('{"command":"profile","kind":"cpu"}')).toBe("duration_ms: a CPU profile needs its duration, e.g. 10000");
    expect(error('{"command":"profile","kind":"cpu","duration_ms":300001}')).toBe("duration_ms: must be an integer from 100 to 300000, got 300001");
    expect(error('{"command":"profile","kind":"heap","duration_ms":1000}')).toBe("duration_ms: a heap snapshot is taken at once and has no duration, got 1000");
    expect(error('{"command":"profile","kind":"memory"}')).toBe('kind: must be one of cpu, heap, got "memory"');
  });
});
