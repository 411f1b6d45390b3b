// Runs a real @pyroscope/nodejs client against a Vispyr ingest URL.
// usage: node app.js <module> <serverAddress> <appName>
const mod = require(process.argv[2]);
const Pyroscope = mod.default || mod;

Pyroscope.init({
  serverAddress: process.argv[3],
  appName: process.argv[4],
  tags: { env: 'nodetest' },
  flushIntervalMs: 1000,
  wall: { samplingDurationMs: 1000 },
  heap: { samplingIntervalBytes: 4096 },
});
Pyroscope.start();

const keep = [];
function vispyrNodeBusy(ms) {
  let x = 0;
  const end = Date.now() + ms;
  while (Date.now() < end) {
    for (let i = 0; i < 10000; i++) x = (x * 31 + i) % 1000003;
    keep.push(new Array(64).fill(x));
    if (keep.length > 20000) keep.splice(0, 10000);
  }
  return x;
}

// @pyroscope/nodejs races its own stop(): a profiling round already scheduled
// with setImmediate throws "Wall profiler is not started" (0.4.x) or "Heap
// profiler is not enabled" (0.6.x, under load) once stop() has begun. That is
// the client's bug, not the server's; let stop() finish.
let stopping = false;
process.on('uncaughtException', (err) => {
  if (stopping && /Wall profiler is not started|Heap profiler is not enabled/.test(String(err && err.message))) return;
  console.error(err);
  process.exit(1);
});

function loop(rounds) {
  vispyrNodeBusy(300);
  if (rounds > 0) {
    setTimeout(() => loop(rounds - 1), 10);
    return;
  }
  stopping = true;
  Pyroscope.stop().then(() => process.exit(0), (err) => {
    console.error(err);
    process.exit(1);
  });
}
loop(7);
