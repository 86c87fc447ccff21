// temporary debugging script (deleted before handing back)
import { spawn, execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync, readFileSync, openSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { startLoad } from "../test/support/load.js";
const ROOT = "/work/main";
const mode = process.argv[2] ?? "reuseport-surge0";
const event = process.argv[3] ?? "lifespan";
const port = 20000 + Math.floor(Math.random() * 6000);
const dir = mkdtempSync(join(tmpdir(), "zd-debug-"));
const sock = join(dir, "ctl.sock");
const args = mode.startsWith("reuseport") ? `[--port, "${port}", --reuse-port, --log-count, "0"]` : `[--listen-fd, "3", --log-count, "0"]`;
const extra = (mode === "reuseport-surge0" ? "      max_surge: 0\n" : "") + (mode.startsWith("listen") ? `      listen: ["127.0.0.1:${port}"]\n      reuse_port: ${mode === "listen-lanes"}\n` : "") + (event === "lifespan" ? "      limits: {lifespan: 3s, jitter_ratio: 0.2}\n" : "");
writeFileSync(join(dir, "c.yaml"), `admin: {port: ${port + 100}, host: 127.0.0.1, control_socket: ${sock}}\nsupervisor:\n  workers:\n    - name: web\n      replicas: 4\n      max_restarts: -1\n      exec: ${ROOT}/dist/processbin\n      signal_timeout: 5s\n      args: ${args}\n${extra}`);
const out = openSync(join(dir, "out.log"), "a");
const child = spawn(process.execPath, [`${ROOT}/dist/monoceros`, "-c", join(dir, "c.yaml")], { stdio: ["ignore", out, out] });
await new Promise((r) => setTimeout(r, 1500));
const t0 = Date.now();
const load = startLoad(port, { newConnectionClients: 4, keepAliveClients: 4 });
await new Promise((r) => setTimeout(r, 1000));
if (event === "scale") {
  execFileSync(process.execPath, [`${ROOT}/dist/monoceros`, "ctl", "--socket", sock, "scale", "web", "8"]);
  await new Promise((r) => setTimeout(r, 1500));
  console.log("scale 2 at", Date.now() - t0);
  execFileSync(process.execPath, [`${ROOT}/dist/monoceros`, "ctl", "--socket", sock, "scale", "web", "2"]);
}
if (event === "restart") execFileSync(process.execPath, [`${ROOT}/dist/monoceros`, "ctl", "--socket", sock, "restart", "web"]);
await new Promise((r) => setTimeout(r, event === "lifespan" ? 8000 : 4000));
const result = await load.stop();
child.kill("SIGTERM");
await new Promise((r) => child.on("close", r));
console.log("ok", result.ok, "failed", result.failed);
for (const f of result.failures) console.log("F", f.atMs, f.kind, f.error);
for (const line of readFileSync(join(dir, "out.log"), "utf8").split("\n")) {
  try { const r = JSON.parse(line); if (r.msg && !String(r.msg).startsWith("") ) continue; if (r.worker_info_msg && !/Caught|started|listening/.test(r.worker_info_msg)) continue; console.log("R", Math.round(r.ts * 1000 - t0), r.msg, r.worker_id ?? "", r.pid ?? "", r.worker_info_msg ?? "", r.cause ?? "", r.code ?? "", r.signal ?? ""); } catch {}
}
