// The notify protocol against real senders: a Python program doing what sd_notify(3) does (one
// datagram per call to the path in NOTIFY_SOCKET), and systemd-notify itself where installed.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readlinkSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { NOTIFY_DATAGRAM_MAX_BYTES, NOTIFY_STATUS_MAX_CHARS, NotifySockets, notifySupport, parseNotifyMessage, type NotifyMessage } from "../../src/backends/os/notify-socket.js";
import { pollFor, ROOT } from "../support/monoceros.js";

/**
 * Sends each argument (Python escapes such as \n allowed; "bytes:N" for N bytes) as one datagram
 * to $NOTIFY_SOCKET. A socket that is gone is no error; other send errors are printed, not fatal.
 */
const SENDER = `
import os, socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for arg in sys.argv[1:]:
    data = b"x" * int(arg[6:]) if arg.startswith("bytes:") else arg.encode().decode("unicode_escape").encode()
    try:
        s.sendto(data, os.environ["NOTIFY_SOCKET"])
    except (FileNotFoundError, ConnectionRefusedError):
        pass
    except OSError as e:
        print("send failed:", e, file=sys.stderr)
`;

const children: ChildProcess[] = [];
const socketSets: NotifySockets[] = [];
const folders: string[] = [];

afterEach(() => {
  for (const child of children.splice(0)) {
    // Not yet reaped, so the pid is still this child's.
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  }
  for (const sockets of socketSets.splice(0)) sockets.closeAll();
  for (const folder of folders.splice(0)) rmSync(folder, { recursive: true, force: true });
});

function start(command: string, args: string[], notifySocket: string): Promise<number | null> {
  const child = spawn(command, args, { env: { ...process.env, NOTIFY_SOCKET: notifySocket }, stdio: ["ignore", "ignore", "inherit"] });
  children.push(child);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

const send = (notifySocket: string, ...datagrams: string[]) => start("python3", ["-c", SENDER, ...datagrams], notifySocket);

interface Received {
  key: string;
  message: NotifyMessage;
}

function notifySockets(onMessage?: (key: string, message: NotifyMessage, sockets: NotifySockets) => void): { sockets: NotifySockets; received: Received[]; problems: string[] } {
  const received: Received[] = [];
  const problems: string[] = [];
  const sockets: NotifySockets = new NotifySockets(
    (key, message) => {
      received.push({ key, message });
      onMessage?.(key, message, sockets);
    },
    (problem) => problems.push(problem),
  );
  socketSets.push(sockets);
  return { sockets, received, problems };
}

const message = (fields: Partial<NotifyMessage>): NotifyMessage => ({ ready: false, watchdog: false, stopping: false, status: null, ...fields });

describe("parseNotifyMessage", () => {
  const parse = (text: string) => parseNotifyMessage(Buffer.from(text));

  it("reads several assignments of one datagram, unknown ones ignored", () => {
    expect(parse("READY=1\nSTATUS=serving\nMAINPID=42\nWATCHDOG=1\n")).toEqual(message({ ready: true, watchdog: true, status: "serving" }));
    expect(parse("STOPPING=1")).toEqual(message({ stopping: true }));
  });

  it("keeps an = inside STATUS and takes the last STATUS", () => {
    expect(parse("STATUS=a=b=c")).toEqual(message({ status: "a=b=c" }));
    expect(parse("STATUS=first\nSTATUS=second")).toEqual(message({ status: "second" }));
    expect(parse("STATUS=")).toEqual(message({ status: "" }));
  });

  it("replaces control characters in STATUS and cuts a long one", () => {
    expect(parse("STATUS=tab\there\u001b[31m\r")).toEqual(message({ status: "tab\ufffdhere\ufffd[31m\ufffd" }));
    const long = parse(`STATUS=${"é".repeat(500)}`).status;
    expect(long).toBe("é".repeat(NOTIFY_STATUS_MAX_CHARS));
    expect(Array.from(parse(`STATUS=${"😀".repeat(300)}`).status ?? "")).toHaveLength(NOTIFY_STATUS_MAX_CHARS);
  });

  it("takes values literally: WATCHDOG=trigger is not a keepalive, READY=0 is not ready", () => {
    expect(parse("WATCHDOG=trigger")).toEqual(message({}));
    expect(parse("READY=0\nREADY=1 \nready=1\n READY=1")).toEqual(message({}));
  });

  it("survives garbage", () => {
    expect(parseNotifyMessage(Buffer.from([0xff, 0x00, 0xfe, 0x0a, 0x80]))).toEqual(message({}));
    expect(parseNotifyMessage(Buffer.concat([Buffer.from("READY=1\nSTATUS=x"), Buffer.from([0xc3, 0x28, 0x00])]))).toEqual(message({ ready: true, status: "x\ufffd(\ufffd" }));
    expect(parseNotifyMessage(Buffer.alloc(0))).toEqual(message({}));
  });

  it("reads only the whole lines within NOTIFY_DATAGRAM_MAX_BYTES", () => {
    const head = "READY=1\n";
    const filler = "X".repeat(NOTIFY_DATAGRAM_MAX_BYTES - head.length - 1);
    expect(parse(`${head}${filler}\nSTOPPING=1`)).toEqual(message({ ready: true }));
    // The limit falls inside "STOPPING=1": not read as anything.
    expect(parse(`${head}${filler.slice(5)}\nSTOPPING=1`)).toEqual(message({ ready: true }));
    expect(parse(`STATUS=${"y".repeat(70_000)}\nREADY=1`)).toEqual(message({}));
  });
});

describe("notify sockets", () => {
  it("loads the addon on this machine", () => {
    expect(notifySupport()).toEqual({ ok: true });
  });

  it("delivers a worker's messages in order, under its key", async () => {
    const { sockets, received, problems } = notifySockets();
    const path = sockets.open("0-12");
    expect(Buffer.byteLength(path)).toBeLessThan(108);
    expect(sockets.open("0-12")).toBe(path);
    expect(await send(path, "READY=1", "STATUS=warming up\\nWATCHDOG=1", "STOPPING=1")).toBe(0);
    await pollFor("three messages", () => received.length >= 3, 10_000);
    expect(received).toEqual([
      { key: "0-12", message: message({ ready: true }) },
      { key: "0-12", message: message({ status: "warming up", watchdog: true }) },
      { key: "0-12", message: message({ stopping: true }) },
    ]);
    expect(problems).toEqual([]);
  });

  it("tells two workers apart by their sockets", async () => {
    const { sockets, received } = notifySockets();
    const first = sockets.open("0-1");
    const second = sockets.open("1-1");
    expect(first).not.toBe(second);
    await Promise.all([send(first, "STATUS=one", "READY=1"), send(second, "STATUS=two", "STOPPING=1")]);
    await pollFor("four messages", () => received.length >= 4, 10_000);
    expect(received.filter((r) => r.key === "0-1").map((r) => r.message)).toEqual([message({ status: "one" }), message({ ready: true })]);
    expect(received.filter((r) => r.key === "1-1").map((r) => r.message)).toEqual([message({ status: "two" }), message({ stopping: true })]);
  });

  it("reads a 64 KiB datagram without harm and goes on with the next", async () => {
    const { sockets, received, problems } = notifySockets();
    const path = sockets.open("big");
    expect(await send(path, "bytes:65536", "READY=1")).toBe(0);
    await pollFor("two messages", () => received.length >= 2, 10_000);
    expect(received.map((r) => r.message)).toEqual([message({}), message({ ready: true })]);
    expect(problems).toEqual([]);
  });

  it("handles a flood as it arrives", async () => {
    const { sockets, received } = notifySockets();
    const path = sockets.open("flood");
    const count = 20_000;
    const flood = `import os, socket\ns = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\nfor i in range(${count}): s.sendto(b"WATCHDOG=1", os.environ["NOTIFY_SOCKET"])`;
    expect(await start("python3", ["-c", flood], path)).toBe(0);
    await pollFor("every datagram", () => received.length >= count, 20_000);
    expect(received.every((r) => r.message.watchdog)).toBe(true);
  });

  it("drops what arrives for a key once it is closed, even when closed by the message handler", async () => {
    const { sockets, received, problems } = notifySockets((key, _message, self) => self.close(key));
    const path = sockets.open("0-3");
    expect(await send(path, "READY=1", "STATUS=after", "STOPPING=1")).toBe(0);
    await pollFor("the first message", () => received.length >= 1, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(received).toEqual([{ key: "0-3", message: message({ ready: true }) }]);
    expect(existsSync(path)).toBe(false);
    expect(problems).toEqual([]);
    // The same key opens a new socket at the same path.
    expect(sockets.open("0-3")).toBe(path);
    expect(await send(path, "STATUS=again")).toBe(0);
    await pollFor("the message to the new socket", () => received.length >= 2, 10_000);
  });

  it("refuses bad keys and a path it cannot bind, with one-line errors", () => {
    const { sockets } = notifySockets();
    expect(() => sockets.open("../x")).toThrow(/A-Za-z0-9_-/);
    expect(() => sockets.open("")).toThrow(/A-Za-z0-9_-/);
    expect(() => sockets.open("k".repeat(33))).toThrow(/A-Za-z0-9_-/);
    const path = sockets.open("taken");
    sockets.close("taken");
    writeFileSync(path, "not a socket");
    expect(() => sockets.open("taken")).toThrow(/^cannot bind the notify socket .*taken: Address already in use$/);
  });

  it("removes the folders a SIGKILLed Monoceros left (its pid is gone), and only those", () => {
    const dead = spawn("true");
    const deadPid = dead.pid as number;
    return new Promise<void>((resolve) => dead.once("exit", () => resolve())).then(() => {
      const namespace = /\[(\d+)\]/.exec(readlinkSync("/proc/self/ns/pid"))?.[1];
      const leftover = mkdtempSync(join(tmpdir(), `monoceros-notify-${namespace}-${deadPid}-`));
      writeFileSync(join(leftover, "0-0"), "");
      const live = mkdtempSync(join(tmpdir(), `monoceros-notify-${namespace}-${process.pid}-`));
      // Another pid namespace's (a container sharing /tmp): its pids are not ours to judge.
      const foreign = mkdtempSync(join(tmpdir(), `monoceros-notify-1-${deadPid}-`));
      const { sockets } = notifySockets();
      expect(existsSync(leftover)).toBe(false);
      expect(existsSync(live)).toBe(true);
      expect(existsSync(foreign)).toBe(true);
      sockets.closeAll();
      for (const folder of [live, foreign]) rmSync(folder, { recursive: true, force: true });
    });
  });

  it("binds a worker's socket again when its file was removed (a /tmp cleaner)", () => {
    const { sockets } = notifySockets();
    const path = sockets.open("0-1");
    rmSync(path);
    expect(sockets.open("0-1")).toBe(path);
    expect(existsSync(path)).toBe(true);
    sockets.closeAll();
    return Promise.resolve().then(() => {
    });
  });

  it("removes its folder on closeAll, once, and opens nothing after", () => {
    const { sockets, problems } = notifySockets();
    const path = sockets.open("a");
    sockets.open("b");
    const folder = join(path, "..");
    expect(statSync(folder).mode & 0o777).toBe(0o700);
    sockets.closeAll();
    expect(existsSync(folder)).toBe(false);
    sockets.closeAll();
    expect(() => sockets.open("c")).toThrow(/closed/);
    expect(problems).toEqual([]);
  });

  it.each([
    ["at once", "setTimeout(() => { sockets.closeAll(); console.log(\"closed\"); }, 50);"],
    ["from the message handler", "spawn(\"python3\", [\"-c\", SENDER, \"READY=1\", \"READY=1\", \"READY=1\"], { env: { ...process.env, NOTIFY_SOCKET: path }, stdio: \"ignore\" });"],
  ])("lets the process exit after closeAll, called %s", async (_when, closing) => {
    const folder = mkdtempSync(join(tmpdir(), "monoceros-notify-test-"));
    folders.push(folder);
    const script = join(folder, "exits.ts");
    writeFileSync(
      script,
      `import { spawn } from "node:child_process";
import { NotifySockets } from ${JSON.stringify(join(ROOT, "src/backends/os/notify-socket.ts"))};
const SENDER = ${JSON.stringify(SENDER)};
const sockets = new NotifySockets(() => { sockets.closeAll(); console.log("closed"); }, (problem) => console.log(problem));
sockets.open("idle");
const path = sockets.open("busy");
${closing}
`,
    );
    const child = spawn(join(ROOT, "node_modules/.bin/tsx"), [script], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(child);
    let output = "";
    child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    const code = await new Promise<number | null>((resolve) => child.once("exit", resolve));
    expect(code).toBe(0);
    expect(output).toBe("closed\n");
  });

  it("hears systemd-notify --ready", async () => {
    let systemdNotify: string;
    try {
      systemdNotify = execFileSync("sh", ["-c", "command -v systemd-notify"]).toString().trim();
    } catch {
      console.log("SKIPPED systemd-notify --ready: systemd-notify is not installed (make test installs it as root: apt-get install -y systemd)");
      return;
    }
    const { sockets, received, problems } = notifySockets();
    const path = sockets.open("sd");
    expect(await start(systemdNotify, ["--ready", "--status=up and running"], path)).toBe(0);
    await pollFor("systemd-notify's message", () => received.some((r) => r.message.ready), 10_000);
    expect(received[0]).toEqual({ key: "sd", message: message({ ready: true, status: "up and running" }) });
    expect(problems).toEqual([]);
  });
});
