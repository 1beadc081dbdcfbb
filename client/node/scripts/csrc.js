#!/usr/bin/env node
// Copies the C near tier (common/ring.*, common/units.*, client/near.*,
// client/nearcache.h) from the repository into csrc/, from where
// binding.gyp builds the addon: before a build in the repository, and at
// `npm pack` (prepack), so the tarball builds with no repository around it.
// Outside the repository (an unpacked tarball) it keeps the copies it has.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const pkg = path.resolve(__dirname, '..');
const repo = path.resolve(pkg, '../..');
const files = ['common/ring.c', 'common/ring.h', 'common/units.c', 'common/units.h',
  'client/near.c', 'client/near.h', 'client/nearcache.h'];

/** Copies the sources when the repository is there; returns whether it did. */
function copySources() {
  if (!fs.existsSync(path.join(repo, 'common/ring.c')) || !fs.existsSync(path.join(repo, 'client/near.c'))) return false;
  fs.mkdirSync(path.join(pkg, 'csrc'), { recursive: true });
  for (const f of files) fs.copyFileSync(path.join(repo, f), path.join(pkg, 'csrc', path.basename(f)));
  return true;
}

module.exports = { copySources };
if (require.main === module) copySources();
