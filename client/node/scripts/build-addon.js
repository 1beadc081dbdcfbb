#!/usr/bin/env node
// Builds the near tier's addon with node-gyp (bundled with npm), offline:
// node-gyp is pointed at the running Node's own headers (`--nodedir`: the
// prefix above bin/node, when it holds include/node/node_api.h, as Debian's
// and NodeSource's packages and the official tarballs do), so it downloads
// nothing. $npm_config_nodedir wins when set. The package's install script.
'use strict';
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
require('./csrc.js').copySources();
const prefix = path.resolve(path.dirname(process.execPath), '..');
let nodedir = process.env.npm_config_nodedir;
if (!nodedir && fs.existsSync(path.join(prefix, 'include/node/node_api.h'))) nodedir = prefix;
const args = ['rebuild'];
if (nodedir) args.push(`--nodedir=${nodedir}`);
let gyp = process.env.npm_config_node_gyp;
if (!gyp) {
  const npmDir = path.join(prefix, 'lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js');
  gyp = fs.existsSync(npmDir) ? npmDir : require.resolve('node-gyp/bin/node-gyp.js');
}
try {
  execFileSync(process.execPath, [gyp, ...args], { cwd: pkg, stdio: 'inherit' });
} catch {
  console.error('nearcache: could not build the near tier addon; the client works without ' +
    'its near tier (nearStats().problem says why). A C compiler, make and Python 3 are needed.');
  process.exit(process.env.NEARCACHE_ADDON_REQUIRED ? 1 : 0);
}
