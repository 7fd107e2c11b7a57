/**
 * A child process for the kill -9 test: opens a LocalStore on `dir` and appends the pattern
 * bytes of upload `id` from its durable offset on, slowly (half of what is left, then it stalls), printing `reported <offset>` each time
 * getUpload reports a new offset (what a HEAD would answer). The test kills it with SIGKILL
 * mid-append and checks that a new store reports at least the last offset printed.
 *
 *   node --import tsx test/helpers/append-child.ts <dir> <id> <total> <directIo> <checkpointBytes>
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { LocalStore } from '../../storage/local-store.js';
import { pattern } from './uploads.js';

const [dir, id, totalText, directIo, checkpointText] = process.argv.slice(2) as [string, string, string, string, string];
const total = Number(totalText);
const store = new LocalStore(dir, { fsync: true, directIo: directIo === 'true', checkpointBytes: Number(checkpointText) });
await store.open();
const start = (await store.getUpload(id))?.offset ?? 0;
const data = pattern(total);

// Half the bytes, slowly, and then the body stalls (a client that has gone quiet) until the test
// kills the process: the kill always lands mid-append, however late a loaded machine lets the test
// read the offsets printed. (With the whole body sent, the append could end before the kill.)
const stallAt = start + Math.floor((total - start) / 2);
async function* slowly(): AsyncGenerator<Buffer> {
  for (let at = start; at < total; at += 64 * 1024) {
    if (at >= stallAt) await new Promise<never>(() => {});
    yield data.subarray(at, Math.min(total, at + 64 * 1024));
    await sleep(1);
  }
}

let reported = -1;
const watch = setInterval(() => {
  void store.getUpload(id).then((s) => {
    if (s !== null && s.offset !== reported) {
      reported = s.offset;
      process.stdout.write(`reported ${reported}\n`);
    }
  });
}, 5);
await store.appendUpload(id, slowly(), { offset: start });
clearInterval(watch);
process.stdout.write('done\n');
