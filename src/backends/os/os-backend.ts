// Real processes: spawned without a shell, each in its own session and process group (so signals
// reach a worker's children too), output forwarded line by line. What happens after a worker's
// leader exits is reported as facts for the core to decide on: whether its group still has
// processes and whether its output is closed, then each of those when it changes.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { RESOURCE_ERROR_CODES } from "../../domain/supervisor.js";
import type { Signal, WorkerRef } from "../../domain/types.js";
import type { LogChannels } from "../../logs/worker-output.js";
import { RunAsResolver, type RunAs } from "./run-as.js";
import { forwardStream } from "../../logs/worker-output.js";
import { readProcessStats } from "../../metrics/process-stats.js";
import type { BackendEvent, ProbeRequest, ProcessBackend, ProcessStats, SpawnRequest } from "../../runtime/ports.js";
import { groupRssBytes } from "./group-memory.js";
import { execProbe, httpProbe, tcpProbe } from "./health-probes.js";
import { NotifySockets } from "./notify-socket.js";
import { groupHasLiveMembers } from "./process-group.js";
import type { ListenRegistry } from "./listen-registry.js";
import { coverHeldListenSockets, socketActivationSpawn } from "./listen-sockets.js";
import { Watchdog } from "./watchdog.js";

export interface OsBackendOptions {
  channels: LogChannels;
  /** Also given every chunk of lines a worker's output produced, as written (for `ctl logs`). */
  onWorkerOutput?: (poolName: string, workerId: string, text: string) => void;
  /** The pools' `listen` sockets (socket activation), if any pool has them. */
  listenSockets?: ListenRegistry;
  maxLineBytes?: number;
  onLogCollision?: () => void;
  onProblem: (message: string) => void;
}

/** Set in every worker's (and proxy's) environment: the watchdog finds them by it if Monoceros dies. */
const INSTANCE_ENV = "MONOCEROS_INSTANCE_ID";

/**
 * While an exited worker's group still has processes, it is checked this often: from the first
 * delay, doubling up to the max; a group still there after GROUP_POLL_SLOW_AFTER_MS (far past the
 * core's SIGKILL and give-up) is checked once a minute. The core decides when to signal and when
 * to give up; this only notices when they are gone (a rate, not a wait: a process stuck in D state
 * may never go, and stays listed with the watchdog until it does).
 */
const GROUP_POLL_FIRST_MS = 5;
const GROUP_POLL_MAX_MS = 1_000;
const GROUP_POLL_SLOW_AFTER_MS = 5 * 60_000;
const GROUP_POLL_SLOW_MS = 60_000;

/** The same channels, each also handing what it writes to `also`. */
function teeChannels(channels: LogChannels, also: (text: string) => void): LogChannels {
  const tee = (channel: LogChannels[keyof LogChannels]) => ({
    write: (text: string, source?: Parameters<typeof channel.write>[1]) => {
      channel.write(text, source);
      also(text);
    },
  });
  return { stdout: tee(channels.stdout), stderr: tee(channels.stderr), records: tee(channels.records) };
}

function withoutKeys(env: NodeJS.ProcessEnv, keys: readonly string[]): Record<string, string | undefined> {
  const copy = { ...env };
  for (const key of keys) delete copy[key];
  return copy;
}

export class OsBackend implements ProcessBackend {
  private sink: (event: BackendEvent) => void = () => {};
  /** Also the one list of live worker process groups (a worker's pid is its group id). */
  private readonly watchdog: Watchdog;
  private readonly instanceId = `${process.pid}-${randomBytes(6).toString("hex")}`;
  private readonly groupPolls = new Set<NodeJS.Timeout>();
  private readonly runAs = new RunAsResolver();
  /** Created on the first worker with health_check.notify; one socket per worker slot, kept across its restarts. */
  private notifySockets: NotifySockets | null = null;
  /** The incarnation each slot's notify socket speaks for now. */
  private readonly notifyRefs = new Map<string, WorkerRef>();
  /**
   * Monoceros's environment as workers inherit it, without what systemd gave Monoceros itself: a
   * worker must not notify Monoceros's own unit, and a WATCHDOG_PID that is not its pid makes
   * sd_watchdog_enabled() say no (so a notify worker would never send WATCHDOG=1).
   */
  private readonly inheritedEnv: Record<string, string | undefined> = withoutKeys(process.env, ["NOTIFY_SOCKET", "WATCHDOG_PID", "WATCHDOG_USEC"]);

  constructor(private readonly options: OsBackendOptions) {
    this.watchdog = new Watchdog(options.onProblem, `${INSTANCE_ENV}=${this.instanceId}`);
    this.watchdog.start();
  }

  attach(sink: (event: BackendEvent) => void): void {
    this.sink = sink;
  }

  spawn(request: SpawnRequest): void {
    const { ref } = request;
    const failed = (error: unknown) => {
      const code = (error as NodeJS.ErrnoException).code ?? "ESPAWN";
      const message = error instanceof Error ? error.message : String(error);
      this.sink({ type: "spawnFailed", ref, errorCode: code, message });
    };
    let child;
    try {
      // The pool's user and group (root only; libuv also drops root's supplementary groups), and its folder.
      const runAs = this.runAs.resolve(request.user, request.group);
      const notifyEnv = request.notify ? { NOTIFY_SOCKET: this.openNotifySocket(ref, runAs) } : {};
      const sockets = request.lane === null ? null : (this.options.listenSockets?.socketsFor(ref.pool, request.lane) ?? null);
      // With `listen`: the lane's sockets as fd 3 onwards, LISTEN_PID set to the worker's own pid by a /bin/sh that exec()s it.
      const launch = sockets === null
        ? { file: request.exec, args: [...request.args], stdio: coverHeldListenSockets(["ignore", "pipe", "pipe"]), env: {} }
        : socketActivationSpawn(request.exec, request.args, sockets.fds, sockets.names);
      child = spawn(launch.file, launch.args, {
        env: { ...this.inheritedEnv, ...request.env, ...notifyEnv, ...launch.env, [INSTANCE_ENV]: this.instanceId },
        detached: true, // setsid(): its own session and process group
        stdio: launch.stdio,
        ...runAs,
        ...(request.cwd === null ? {} : { cwd: request.cwd }),
      });
    } catch (error) {
      queueMicrotask(() => failed(error));
      return;
    }
    const onOutput = this.options.onWorkerOutput;
    const channels = onOutput === undefined ? this.options.channels : teeChannels(this.options.channels, (text) => onOutput(request.poolName, request.workerId, text));
    const pid = child.pid;
    if (pid === undefined) {
      // No process (ENOENT, EACCES, EMFILE, EAGAIN…): Node says why with "error" a tick later,
      // and may have created no pipes at all (EMFILE).
      child.once("error", failed);
      return;
    }
    // Registered with the watchdog at once (the pid is known as soon as spawn() returns), not on
    // the "spawn" event a tick later: a Monoceros killed in between would otherwise orphan it.
    this.watchdog.add(pid);
    let spawned = false;
    let leaderExited = false;
    let openPipes = 2;
    child.once("spawn", () => {
      spawned = true;
      this.sink({ type: "spawned", ref, pid });
    });
    child.on("error", (error: NodeJS.ErrnoException) => {
      if (!spawned) failed(error); // after "spawn" it is e.g. a failed kill(): the exit is reported by "exit"
    });
    for (const [readable, stream] of [[child.stdout, "stdout"], [child.stderr, "stderr"]] as const) {
      // Always pipes (stdio 1 and 2 above); a null would be a Node change, counted as closed.
      if (readable === null) {
        openPipes--;
        continue;
      }
      forwardStream(readable, stream, request.workerId, channels, {
        stderrLevel: request.stderrLevel,
        maxLineBytes: this.options.maxLineBytes,
        onCollision: this.options.onLogCollision,
      });
      readable.once("close", () => {
        openPipes--;
        if (openPipes === 0 && leaderExited) this.sink({ type: "outputClosed", ref });
      });
    }
    child.once("exit", (code, signal) => {
      if (!spawned) return;
      leaderExited = true;
      const groupEmpty = !groupHasLiveMembers(pid);
      if (groupEmpty) this.watchdog.remove(pid);
      else this.pollGroup(ref, pid, GROUP_POLL_FIRST_MS, performance.now());
      this.sink({ type: "exited", ref, code, signal, groupEmpty, outputClosed: openPipes === 0 });
    });
  }

  /** Until the group is empty it stays with the watchdog, so a Monoceros killed meanwhile leaves nothing. */
  private pollGroup(ref: WorkerRef, pgid: number, delayMs: number, sinceMs: number): void {
    const timer = setTimeout(() => {
      this.groupPolls.delete(timer);
      if (groupHasLiveMembers(pgid)) {
        const slow = performance.now() - sinceMs >= GROUP_POLL_SLOW_AFTER_MS;
        this.pollGroup(ref, pgid, slow ? GROUP_POLL_SLOW_MS : Math.min(GROUP_POLL_MAX_MS, delayMs * 2), sinceMs);
        return;
      }
      this.watchdog.remove(pgid);
      this.sink({ type: "groupEmpty", ref });
    }, delayMs);
    this.groupPolls.add(timer);
  }

  /** The slot's socket (opened once); its datagrams are reported for the slot's newest incarnation. */
  private openNotifySocket(ref: WorkerRef, owner: RunAs): string {
    const key = `${ref.pool}-${ref.worker}`;
    this.notifySockets ??= new NotifySockets(
      (slot, message) => {
        const current = this.notifyRefs.get(slot);
        if (current !== undefined) this.sink({ type: "notify", ref: current, ...message });
      },
      this.options.onProblem,
    );
    this.notifyRefs.set(key, ref);
    return this.notifySockets.open(key, owner);
  }

  /** Runs the check off the event loop's critical path; its outcome comes back as checkResult. */
  probe(request: ProbeRequest): void {
    const { probe, timeoutMs, ref, seq } = request;
    const outcome = probe.kind === "http"
      ? httpProbe({ host: probe.host, port: probe.port, path: probe.path }, timeoutMs)
      : probe.kind === "tcp"
        ? tcpProbe({ host: probe.host, port: probe.port }, timeoutMs)
        // Marked like a worker: a check still running when Monoceros is killed is swept by the watchdog.
        : execProbe(probe.argv, timeoutMs, this.helperEnv());
    // A connect or spawn that failed for lack of a resource on our side (fds, processes, memory) says nothing about the worker.
    void outcome.then(({ result, detail, errorCode }) => this.sink({ type: "checkResult", ref, seq, result, detail, localError: errorCode !== undefined && RESOURCE_ERROR_CODES.includes(errorCode) }));
  }

  /**
   * The environment of a command Monoceros runs beside its workers (an exec check, a `ctl debug`
   * command): the workers' inherited one with the instance mark, so the watchdog sweeps such a
   * command too if Monoceros is killed while it runs.
   */
  helperEnv(): Record<string, string> {
    return { ...(this.inheritedEnv as Record<string, string>), [INSTANCE_ENV]: this.instanceId };
  }

  /** One pass over /proc for all groups asked about. */
  sampleMemory(groups: readonly { ref: WorkerRef; pid: number }[]): void {
    const rss = groupRssBytes(new Set(groups.map((group) => group.pid)));
    this.sink({ type: "memorySampled", samples: groups.map(({ ref, pid }) => ({ ref, rssBytes: rss.get(pid) ?? 0 })) });
  }

  signal(pid: number, signal: Signal): void {
    try {
      process.kill(-pid, signal);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ESRCH") return; // already gone
      try {
        process.kill(pid, signal);
      } catch {
        // gone, or not ours to signal: its exit (or the lack of it) is the core's business
      }
    }
  }

  stats(pid: number): ProcessStats | null {
    return readProcessStats(pid);
  }

  /** Last resort on an unexpected crash of Monoceros: SIGKILL every worker group now. */
  killAllNow(): void {
    for (const pid of this.watchdog.liveGroups()) {
      try {
        process.kill(-pid, "SIGKILL");
      } catch {
        // already gone
      }
    }
  }

  close(): void {
    for (const timer of this.groupPolls) clearTimeout(timer);
    this.groupPolls.clear();
    this.notifySockets?.closeAll();
    this.watchdog.stop();
  }
}
