// Regenerates rfc6330_vectors.json with an independent RFC 6330 codec
// (the raptorq npm package, a Rust implementation compiled to WebAssembly):
//   npm install raptorq@1.7.24 && node gen_vectors.mjs > rfc6330_vectors.json
// Each case encodes K symbols of T bytes of xorshift32 data (seed 0x12345678+K)
// and records the first repair symbols by internal symbol ID (ISI = ESI + K' - K).
import fs from 'node:fs';
import { createRequire } from 'node:module';
const req = createRequire(import.meta.url);
const jsPath = req.resolve('raptorq/raptorq.js');
// The package ships an ES module without "type": "module"; load it as one.
const rq = await import('data:text/javascript,' + encodeURIComponent(fs.readFileSync(jsPath, 'utf8')));
rq.initSync(fs.readFileSync(jsPath.replace(/raptorq\.js$/, 'raptorq_bg.wasm')));
const T = 64;
const cases = [10, 18, 26, 100, 101, 1000, 1002, 4112, 10000, 10017, 56403];
function data(k) {
  const b = new Uint8Array(k * T);
  let s = (0x12345678 + k) >>> 0;
  for (let i = 0; i < b.length; i++) {
    s ^= s << 13; s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5; s >>>= 0;
    b[i] = s & 0xff;
  }
  return b;
}
const out = [];
for (const k of cases) {
  const enc = rq.Encoder.with_defaults(data(k), T);
  const pk = enc.encode(4);
  const repair = [];
  let blocks = new Set();
  for (const p of pk) {
    const sbn = p[0], esi = (p[1] << 16) | (p[2] << 8) | p[3];
    blocks.add(sbn);
    // This codec numbers repair symbols from K' (their ISI) whatever K is.
    if (sbn === 0 && esi >= k) repair.push({isi: esi, hex: Buffer.from(p.slice(4)).toString('hex')});
  }
  if (blocks.size !== 1) throw new Error('K=' + k + ' split into ' + blocks.size + ' blocks');
  out.push({k, t: T, repair});
}
console.log(JSON.stringify(out, null, 1));
