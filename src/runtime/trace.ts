// One short line per event and command of the core: the simulator's traces (byte-identical on
// every run of a seed) and `monoceros -d`'s debug records.
import { PROXY_INDEX, type SupervisorState } from "../domain/state.js";
import type { Command, SupervisorEvent, WorkerRef } from "../domain/types.js";

function name(state: SupervisorState, ref: WorkerRef): string {
  const pool = state.pools[ref.pool];
  const process = ref.worker === PROXY_INDEX ? pool?.proxy : pool?.workers[ref.worker];
  return `${process?.id ?? "?"}#${ref.generation}`;
}

export function describeEvent(state: SupervisorState, event: SupervisorEvent): string {
  switch (event.type) {
    case "start":
      return "start";
    case "spawned":
      return `spawned ${name(state, event.ref)} pid=${event.pid}`;
    case "spawnFailed":
      return `spawnFailed ${name(state, event.ref)} ${event.errorCode}`;
    case "exited":
      return `exited ${name(state, event.ref)} code=${event.code} signal=${event.signal}${event.groupEmpty ? "" : " leftovers"}${event.outputClosed ? "" : " output-open"}`;
    case "groupEmpty":
      return `groupEmpty ${name(state, event.ref)}`;
    case "outputClosed":
      return `outputClosed ${name(state, event.ref)}`;
    case "timer": {
      const timer = event.timer;
      if (timer.kind === "stagger") return `timer stagger pool=${timer.pool}`;
      if (timer.kind === "restart") {
        const pool = state.pools[timer.pool];
        return `timer restart ${(timer.worker === PROXY_INDEX ? pool?.proxy : pool?.workers[timer.worker])?.id}`;
      }
      if (timer.kind === "memorySample") return "timer memorySample";
      return `timer ${timer.kind} ${name(state, timer.ref)}`;
    }
    case "shutdownRequested":
      return `shutdownRequested ${event.signal}`;
    case "checkResult":
      return `checkResult ${name(state, event.ref)} #${event.seq} ${event.localError === true ? "local-error" : event.result}`;
    case "notify":
      return `notify ${name(state, event.ref)}${event.ready ? " READY" : ""}${event.watchdog ? " WATCHDOG" : ""}${event.stopping ? " STOPPING" : ""}`;
    case "memorySampled":
      return `memorySampled ${event.samples.map((sample) => `${name(state, sample.ref)}=${sample.rssBytes}`).join(" ")}`;
    case "scale":
      return `scale pool=${event.pool} replicas=${event.replicas}`;
    case "restartRequested":
      return `restartRequested pool=${event.pool} worker=${event.worker ?? "all"}`;
    case "reload":
      return `reload #${event.requestId} ${event.config.pools.map((pool) => `${pool.name}×${pool.replicas}`).join(" ")}`;
  }
}

export function describeCommand(state: SupervisorState, command: Command): string {
  switch (command.type) {
    case "spawn":
      return `spawn ${name(state, command.ref)} exec=${command.exec} args=${JSON.stringify(command.args)}${command.lane === null || state.pools[command.ref.pool]?.config.listen.length === 0 ? "" : ` lane=${command.lane}`}${command.notify ? " notify" : ""}`;
    case "signal":
      return `signal ${name(state, command.ref)} pid=${command.pid} ${command.signal}`;
    case "setTimer":
      return `setTimer ${command.key} at=${command.atMs}`;
    case "cancelTimer":
      return `cancelTimer ${command.key}`;
    case "log":
      return `log ${command.level} ${command.msg}`;
    case "metric":
      return `metric ${command.metric}${"pool" in command ? ` ${command.pool}` : ""}`;
    case "exit":
      return `exit ${command.code}`;
    case "proxyRotation":
      return `proxyRotation pool=${command.pool} ${command.endpoints.map((e) => (e.inRotation ? "1" : "0")).join("")}`;
    case "drainProxy":
      return `drainProxy pool=${command.pool}`;
    case "probe":
      return `probe ${name(state, command.ref)} #${command.seq} ${command.probe.kind}`;
    case "sampleMemory":
      return `sampleMemory ${command.groups.map((group) => name(state, group.ref)).join(" ")}`;
    case "releaseLane":
      return `releaseLane pool=${command.pool} lane=${command.lane}`;
    case "poolRemoved":
      return `poolRemoved pool=${command.pool}`;
    case "reply":
      return `reply #${command.requestId} ${command.ok ? "ok" : "error"} ${command.message}`;
  }
}
