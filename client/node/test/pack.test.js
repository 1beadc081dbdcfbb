// The packed tarball builds its addon with nothing from the network: its C
// sources are in it (csrc/, copied at prepack) and node-gyp takes the
// running Node's own headers (scripts/build-addon.js). Any download would
// go to a proxy that refuses it.
'use strict';
const { test } = require('node:test');
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

test('the tarball from npm pack builds and loads the near tier offline', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nc-nodepack-'));
  try {
    const pkg = path.resolve(__dirname, '..');
    const tgz = execFileSync('npm', ['pack', '--silent', '--pack-destination', dir], { cwd: pkg }).toString().trim().split('\n').pop();
    execFileSync('tar', ['-xzf', path.join(dir, tgz), '-C', dir]);
    const un = path.join(dir, 'package');
    for (const f of ['csrc/near.c', 'csrc/ring.c', 'native/near_addon.c', 'binding.gyp', 'LICENSE', 'index.d.ts']) {
      assert.ok(fs.existsSync(path.join(un, f)), f);
    }
    const env = { ...process.env, https_proxy: 'http://127.0.0.1:9', http_proxy: 'http://127.0.0.1:9',
      npm_config_nodedir: '', NEARCACHE_ADDON_REQUIRED: '1', HOME: dir };
    delete env.npm_config_nodedir;
    execFileSync(process.execPath, ['scripts/build-addon.js'], { cwd: un, env, stdio: 'ignore' });
    const addon = require(path.join(un, 'build/Release/nearcache_near.node'));
    assert.equal(addon.hash('a').toString(16), 'af63dc4c8601ec8c');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
