// Refresh a TUF repository with tuf-js and download one target.
//
// Usage: node tuf_update.mjs MIRROR_URL ROOT_FILE STATE_DIR OUTPUT [TARGET]
//
// MIRROR_URL serves metadata/ and targets/; ROOT_FILE is the pinned initial
// root; STATE_DIR keeps tuf-js's metadata between runs. Prints one JSON line:
// {"ok":true,"target":…,"length":…} or {"ok":false,"error":NAME,"message":…}
// (exit 1).
import fs from 'node:fs';
import path from 'node:path';
import { Updater } from 'tuf-js';

const [mirror, rootFile, stateDir, output, target = 'trusted_root.json'] = process.argv.slice(2);
if (!output) {
  console.error('usage: node tuf_update.mjs MIRROR_URL ROOT_FILE STATE_DIR OUTPUT [TARGET]');
  process.exit(2);
}
const base = mirror.replace(/\/+$/, '');
const metadataDir = path.join(stateDir, 'metadata');
const targetDir = path.join(stateDir, 'targets');
fs.mkdirSync(metadataDir, { recursive: true });
fs.mkdirSync(targetDir, { recursive: true });
if (!fs.existsSync(path.join(metadataDir, 'root.json'))) {
  fs.copyFileSync(rootFile, path.join(metadataDir, 'root.json'));
}

try {
  const updater = new Updater({
    metadataDir,
    metadataBaseUrl: `${base}/metadata`,
    targetDir,
    targetBaseUrl: `${base}/targets`,
    config: { fetchRetries: 0 },
  });
  await updater.refresh();
  const info = await updater.getTargetInfo(target);
  if (!info) {
    throw Object.assign(new Error(`no target ${target}`), { name: 'TargetNotFound' });
  }
  await updater.downloadTarget(info, output);
  console.log(JSON.stringify({ ok: true, target, length: info.length }));
} catch (err) {
  console.log(JSON.stringify({ ok: false, error: err.name, message: String(err.message) }));
  process.exit(1);
}
