// Fake processes driven by scripts, on a virtual clock, as nasty as real ones: they exit when
// told or when they like, ignore SIGTERM, survive SIGKILL for a while or for ever (D state),
// leave children behind in their group, keep their output open after they exit, are reported
// late, fail to spawn with any errno, and their events come again long after they mattered.
// What each spawn does is decided by the scenario's script; the processes that exist (leftover
// children and unreported exits included) stay observable, as the ground truth for invariants.
import type { Signal, WorkerRef } from "../../domain/types.js";
import type { BackendEvent, ProbeRequest, ProcessBackend, ProcessStats, SpawnRequest } from "../../runtime/ports.js";
import {
  checkAnswerAt, childRssBytesAt, FAULT_KINDS, leaderRssBytesAt, unhealthyAt,
  type FakeChildScript, type FakeProcess, type FakeProcessScript, type FaultKind, type ReplayableEvent, type ScriptFor,
} from "./fake-process.js";
import type { VirtualClock } from "./virtual-clock.js";

export type { CheckAnswer, FakeChildScript, FakeProcess, FakeProcessScript, FaultKind, ReplayableEvent, ScriptFor, SigtermBehaviour } from "./fake-process.js";
export { CHILD_RSS_BYTES_DEFAULT, FAULT_KINDS, LEADER_RSS_BYTES_DEFAULT } from "./fake-process.js";

interface Group {
  readonly ref: WorkerRef;
  readonly script: FakeProcessScript;
  readonly leader: FakeProcess;
  /** Members that exist (the leader until its exit is reported). */
  readonly members: Set<FakeProcess>;
  leaderReported: boolean;
  /** Live children holding the output, plus the holder outside the group while it holds it. */
  outputHolders: number;
  readonly holdsOutput: Map<FakeProcess, boolean>;
  /** What was sent about this incarnation, so that it can be sent again when stale. */
  readonly sent: Map<ReplayableEvent, BackendEvent>;
  /** The resident memory its last sample found (to count the drops). */
  lastRssBytes: number | null;
  /** Checks asked for so far (every probeLocalErrorEvery-th cannot be made). */
  probes: number;
}

const slotOf = (ref: WorkerRef) => `${ref.pool}/${ref.worker}`;
const STALE_FAULT = { spawned: "staleSpawned", exited: "staleExited", groupEmpty: "staleGroupEmpty", outputClosed: "staleOutputClosed" } as const satisfies Record<ReplayableEvent, FaultKind>;

export class MemoryBackend implements ProcessBackend {
  private sink: (event: BackendEvent) => void = () => {};
  private nextPid = 1000;
  private spawnCount = 0;
  /** Every process that exists, by pid. */
  private readonly processes = new Map<number, FakeProcess>();
  /** Groups by pgid, while any member exists or an exit or output is still to be reported. */
  private readonly groups = new Map<number, Group>();
  /** Per slot, the newest generation asked for and the scripted replays still to schedule. */
  private readonly slots = new Map<string, { generation: number; pendingReplays: { group: Group; event: ReplayableEvent; afterMs: number }[] }>();
  /** Every line a fake process wrote, in order (bounded by the scripts the scenario gives). */
  readonly output: { workerId: string; line: string }[] = [];
  readonly faults: Record<FaultKind, number> = Object.fromEntries(Object.keys(FAULT_KINDS).map((kind) => [kind, 0])) as Record<FaultKind, number>;

  constructor(
    private readonly clock: VirtualClock,
    private readonly scriptFor: ScriptFor,
    private readonly spawnLatencyMs = 0,
  ) {}

  attach(sink: (event: BackendEvent) => void): void {
    this.sink = sink;
  }

  spawn(request: SpawnRequest): void {
    const script = this.scriptFor(request, this.spawnCount++);
    const slot = this.slotRecord(request.ref);
    slot.generation = Math.max(slot.generation, request.ref.generation);
    const latencyMs = script.spawnLatencyMs ?? this.spawnLatencyMs;
    if (latencyMs > this.spawnLatencyMs) this.faults.slowSpawn++;
    this.later(latencyMs, () => {
      if (script.spawnError !== undefined) {
        this.faults.spawnError++;
        this.sink({ type: "spawnFailed", ref: request.ref, errorCode: script.spawnError, message: `spawn ${request.exec} ${script.spawnError}` });
      } else {
        this.start(request, script);
      }
      this.scheduleStaleReplays(request.ref);
    });
  }

  signal(pid: number, signal: Signal): void {
    const group = this.groups.get(pid);
    if (group === undefined) return;
    const nowMs = this.clock.nowMs();
    for (const process of group.members) {
      if (signal === "SIGKILL") {
        const first = process.sigkillAtMs === null;
        process.sigkillAtMs ??= nowMs;
        if (!first || process.state !== "alive") continue;
        const delayMs = process.role === "leader" ? process.script.sigkillDelayMs : this.childScript(group, process).sigkillDelayMs;
        if (delayMs === null || (delayMs ?? 0) > 0) this.faults[process.role === "leader" ? "leaderSurvivedSigkill" : "childSurvivedSigkill"]++;
        if (delayMs !== null) this.later(delayMs ?? 0, () => this.die(group, process, null, "SIGKILL"));
        continue;
      }
      const first = process.sigtermAtMs === null;
      process.sigtermAtMs ??= nowMs;
      if (!first || process.state !== "alive") continue;
      const behaviour = process.role === "leader" ? process.script.onSigterm : this.childScript(group, process).onSigterm;
      if (behaviour.kind === "exit") this.later(behaviour.afterMs, () => this.die(group, process, behaviour.code, behaviour.signal));
    }
  }

  stats(pid: number): ProcessStats | null {
    const process = this.processes.get(pid);
    if (process === undefined || process.state !== "alive") return null;
    const ranMs = this.clock.nowMs() - process.startedAtMs;
    const group = this.groups.get(process.pgid);
    return {
      cpuSeconds: 0,
      rssBytes: process.role === "leader" || group === undefined ? leaderRssBytesAt(process.script, ranMs) : childRssBytesAt(this.childScript(group, process), ranMs),
      virtualMemoryBytes: 100 * 1024 * 1024,
      openFds: 8,
      maxFds: 1024,
      virtualMemoryMaxBytes: null,
      startTimeSeconds: process.startedAtMs / 1000,
    };
  }

  /** Whether the process would pass a health check now; null if it is gone. */
  healthy(pid: number): boolean | null {
    const process = this.processes.get(pid);
    if (process === undefined || process.state !== "alive") return null;
    return checkAnswerAt(process.script, this.clock.nowMs() - process.startedAtMs) === "ok";
  }

  /**
   * Answers as the script says: refused before readyAfterMs, then ok outside [unhealthyAfterMs,
   * healthyAgainAfterMs) and its unhealthyAs inside; an answer slower than the timeout is a timeout.
   * A hung probe never answers (the core's deadline must notice). Every probeLocalErrorEvery-th
   * cannot be made at all: a local error, at once.
   */
  probe(request: ProbeRequest): void {
    const process = this.processes.get(request.pid);
    const answer = (result: "ok" | "fail" | "timeout", detail: string, afterMs: number) =>
      this.later(afterMs, () => this.sink({ type: "checkResult", ref: request.ref, seq: request.seq, result, detail }));
    const group = this.groups.get(request.pid);
    const every = group?.script.probeLocalErrorEvery;
    if (group !== undefined && every !== undefined && ++group.probes % every === 0) {
      this.faults.probeLocalError++;
      this.later(0, () => this.sink({ type: "checkResult", ref: request.ref, seq: request.seq, result: "fail", detail: "spawn check EMFILE", localError: true }));
      return;
    }
    if (process === undefined || process.state !== "alive" || process.role !== "leader") {
      this.faults.probeRefused++;
      answer("fail", "connection refused (no process)", 0);
      return;
    }
    const ranMs = this.clock.nowMs() - process.startedAtMs;
    const latencyMs = process.script.probeLatencyMs ?? 0;
    const as = checkAnswerAt(process.script, ranMs);
    if (as === "refused") {
      this.faults.probeRefused++;
      answer("fail", "connection refused (not listening yet)", 0);
    } else if (request.probe.kind === "tcp") {
      // A connect succeeds once the worker listens, however its requests are answered.
      answer("ok", "port accepts connections", 0);
    } else if (as === "hung") {
      this.faults.probeHung++;
    } else if (as === "timeout" || latencyMs > request.timeoutMs) {
      this.faults.probeTimedOut++;
      answer("timeout", `no answer within ${request.timeoutMs} ms`, request.timeoutMs);
    } else if (as === "fail") {
      this.faults.probeFailed++;
      answer("fail", "HTTP 503", latencyMs);
    } else {
      if (process.script.unhealthyAfterMs !== undefined && ranMs >= process.script.unhealthyAfterMs) this.faults.probeRecovered++;
      answer("ok", "HTTP 200", latencyMs);
    }
  }

  /** The sum of its live members' resident memory per group (zombies and gone processes count 0). */
  sampleMemory(groups: readonly { ref: WorkerRef; pid: number }[]): void {
    const samples = groups.map(({ ref, pid }) => {
      const rssBytes = this.groupRssBytes(pid);
      const group = this.groups.get(pid);
      if (group !== undefined) {
        if (group.lastRssBytes !== null && rssBytes < group.lastRssBytes) this.faults.rssDropped++;
        group.lastRssBytes = rssBytes;
      }
      return { ref, rssBytes };
    });
    this.later(0, () => this.sink({ type: "memorySampled", samples }));
  }

  /** What a sample of this process group finds now: the resident memory of its live members. */
  groupRssBytes(pgid: number): number {
    let rssBytes = 0;
    for (const member of this.groups.get(pgid)?.members ?? []) rssBytes += this.stats(member.pid)?.rssBytes ?? 0;
    return rssBytes;
  }

  /** Every process that exists right now, leaders (zombies too) and children: the ground truth the simulator checks the core against. */
  alive(): IterableIterator<FakeProcess> {
    return this.processes.values();
  }

  private start(request: SpawnRequest, script: FakeProcessScript): void {
    const nowMs = this.clock.nowMs();
    const leader: FakeProcess = {
      pid: this.nextPid++, pgid: 0, role: "leader", request, script, startedAtMs: nowMs, state: "alive", sigtermAtMs: null, sigkillAtMs: null, goneAtMs: null,
    };
    (leader as { pgid: number }).pgid = leader.pid;
    const group: Group = {
      ref: request.ref, script, leader, members: new Set([leader]), leaderReported: false, outputHolders: 0, holdsOutput: new Map(), sent: new Map(), lastRssBytes: null, probes: 0,
    };
    this.processes.set(leader.pid, leader);
    for (const childScript of script.children ?? []) {
      const child: FakeProcess = { ...leader, pid: this.nextPid++, pgid: leader.pid, role: "child" };
      group.members.add(child);
      group.holdsOutput.set(child, childScript.holdsOutput);
      if (childScript.holdsOutput) group.outputHolders++;
      this.processes.set(child.pid, child);
    }
    this.groups.set(leader.pid, group);
    for (const line of script.lines ?? []) this.output.push({ workerId: request.workerId, line });
    this.send(group, { type: "spawned", ref: request.ref, pid: leader.pid });
    if (script.exitAfterMs !== null) this.later(script.exitAfterMs, () => this.die(group, leader, script.exitCode, script.exitSignal));
    if (request.notify) this.startNotifying(request, leader);
  }

  /**
   * sd_notify as the script says: READY=1 at readyAfterMs, then WATCHDOG=1 every watchdogEveryMs
   * (keepaliveBeforeReady: from the start, READY=1 coming in between), silent in
   * [unhealthyAfterMs, healthyAgainAfterMs) (a datagram due then comes when it speaks again);
   * STOPPING=1 at stoppingAfterMs.
   */
  private startNotifying(request: SpawnRequest, leader: FakeProcess): void {
    const { script } = leader;
    const everyMs = Math.max(1, script.watchdogEveryMs ?? Math.floor(Number(request.env.WATCHDOG_USEC ?? "1000000") / 2000));
    const early = script.keepaliveBeforeReady === true;
    let silent = false;
    let readySent = false;
    /** One datagram; `repeat`: the keepalive loop goes on from it. */
    const notify = (ready: boolean, repeat: boolean) => {
      if (leader.state !== "alive") return;
      const ranMs = this.clock.nowMs() - leader.startedAtMs;
      if (unhealthyAt(script, ranMs)) {
        if (!silent) this.faults.keepalivesStopped++;
        silent = true;
        const againAfterMs = script.healthyAgainAfterMs;
        if (againAfterMs !== undefined) this.later(againAfterMs - ranMs, () => notify(ready, repeat));
        return;
      }
      if (silent) this.faults.keepalivesResumed++;
      silent = false;
      if (ready) readySent = true;
      else if (!readySent) this.faults.keepaliveBeforeReady++;
      this.sink({ type: "notify", ref: request.ref, ready, watchdog: !ready, stopping: false, status: ready ? "ready" : `up ${ranMs} ms` });
      if (repeat) this.later(everyMs, () => notify(false, true));
    };
    if (early) this.later(0, () => notify(false, true));
    const readyAfterMs = script.readyAfterMs ?? 0;
    if (Number.isFinite(readyAfterMs)) this.later(readyAfterMs, () => notify(true, !early));
    const stoppingAfterMs = script.stoppingAfterMs;
    if (stoppingAfterMs === undefined) return;
    this.later(stoppingAfterMs, () => {
      if (leader.state !== "alive") return;
      this.faults.notifyStopping++;
      this.sink({ type: "notify", ref: request.ref, ready: false, watchdog: false, stopping: true, status: "stopping" });
    });
  }

  /** A process ends. A leader becomes a zombie until its exit is reported; a child is gone at once. */
  private die(group: Group, process: FakeProcess, code: number | null, signal: string | null): void {
    if (process.state !== "alive") return;
    if (process.role === "child") {
      this.removeChild(group, process);
      return;
    }
    process.state = "zombie";
    for (const member of group.members) {
      if (member.role !== "child") continue;
      const exitAfterMs = this.childScript(group, member).exitAfterLeaderMs;
      if (exitAfterMs !== null) this.later(exitAfterMs, () => this.die(group, member, null, null));
    }
    const heldMs = group.script.outputHeldAfterExitMs;
    if (heldMs !== undefined) {
      group.outputHolders++;
      if (heldMs !== null) this.later(heldMs, () => this.releaseOutput(group));
    }
    const reportDelayMs = group.script.exitReportDelayMs ?? 0;
    if (reportDelayMs > 0) this.faults.exitReportedLate++;
    this.later(reportDelayMs, () => this.reportExit(group, code, signal));
  }

  private reportExit(group: Group, code: number | null, signal: string | null): void {
    const leader = group.leader;
    leader.goneAtMs = this.clock.nowMs();
    this.processes.delete(leader.pid);
    group.members.delete(leader);
    group.leaderReported = true;
    const groupEmpty = group.members.size === 0;
    const outputClosed = group.outputHolders === 0;
    if (!groupEmpty) this.faults.leftoverAtExit++;
    if (!outputClosed) this.faults.outputOpenAtExit++;
    if ((this.slots.get(slotOf(group.ref))?.generation ?? 0) > group.ref.generation) this.faults.exitAfterRespawn++;
    this.send(group, { type: "exited", ref: group.ref, code, signal, groupEmpty, outputClosed });
    this.forgetIfDone(group);
  }

  private removeChild(group: Group, child: FakeProcess): void {
    child.state = "zombie"; // reaped by init at once: gone
    child.goneAtMs = this.clock.nowMs();
    this.processes.delete(child.pid);
    group.members.delete(child);
    if (group.holdsOutput.get(child) === true) {
      group.holdsOutput.set(child, false);
      this.releaseOutput(group);
    }
    if (group.leaderReported && group.members.size === 0) {
      this.faults.groupEmptyLater++;
      this.send(group, { type: "groupEmpty", ref: group.ref });
      this.forgetIfDone(group);
    }
  }

  private releaseOutput(group: Group): void {
    group.outputHolders--;
    if (group.outputHolders === 0 && group.leaderReported) {
      this.faults.outputClosedLater++;
      this.send(group, { type: "outputClosed", ref: group.ref });
      this.forgetIfDone(group);
    }
  }

  private forgetIfDone(group: Group): void {
    if (group.leaderReported && group.members.size === 0 && group.outputHolders === 0) this.groups.delete(group.leader.pid);
  }

  private send(group: Group, event: BackendEvent & { type: ReplayableEvent }): void {
    group.sent.set(event.type, event);
    if (event.type === "spawned") {
      for (const replay of group.script.staleReplays ?? []) this.slotRecord(group.ref).pendingReplays.push({ group, event: replay.event, afterMs: replay.afterMs });
    }
    this.sink(event);
  }

  /** The slot's newest incarnation was just reported (started or failed): older ones' scripted replays go out from now on. */
  private scheduleStaleReplays(ref: WorkerRef): void {
    const slot = this.slotRecord(ref);
    if (slot.generation !== ref.generation) return;
    const due = slot.pendingReplays.filter((replay) => replay.group.ref.generation < ref.generation);
    slot.pendingReplays = slot.pendingReplays.filter((replay) => replay.group.ref.generation >= ref.generation);
    for (const replay of due) {
      this.later(replay.afterMs, () => {
        // Only what was really sent is sent again; nothing is made up.
        const event = replay.group.sent.get(replay.event);
        if (event === undefined) return;
        this.faults[STALE_FAULT[replay.event]]++;
        this.sink(event);
      });
    }
  }

  private slotRecord(ref: WorkerRef): { generation: number; pendingReplays: { group: Group; event: ReplayableEvent; afterMs: number }[] } {
    const key = slotOf(ref);
    let slot = this.slots.get(key);
    if (slot === undefined) {
      slot = { generation: 0, pendingReplays: [] };
      this.slots.set(key, slot);
    }
    return slot;
  }

  private childScript(group: Group, child: FakeProcess): FakeChildScript {
    // Children are created in script order with consecutive pids after the leader's.
    return group.script.children?.[child.pid - group.leader.pid - 1] as FakeChildScript;
  }

  private later(delayMs: number, action: () => void): void {
    this.clock.setTimer(this.clock.nowMs() + delayMs, action);
  }
}
