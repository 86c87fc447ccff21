// A bare Node.js respawn loop in a process of its own (as small as Node gets): what any Node
// supervisor starts from. Usage: node bench/node-floor.mjs <worker> <times-file> <restarts>
import { spawn } from "node:child_process";

const [worker, file, restarts] = process.argv.slice(2);
for (let i = 0; i <= Number(restarts); i++) {
  await new Promise((done) => {
    const child = spawn(worker, ["restart", file], { detached: true, stdio: ["ignore", "pipe", "pipe"] });
    child.stdout.resume();
    child.stderr.resume();
    child.once("close", done);
  });
}
