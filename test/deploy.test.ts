/**
 * deploy/sluice.service and deploy/env.example: the unit verifies with systemd's own checker,
 * carries the settings the issue asks for, and the env example documents every setting.
 *
 * Needs `systemd-analyze` (Debian: apt-get install -y --no-install-recommends systemd); the
 * verify tests skip with a printed reason only when it is absent.
 */
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { SETTINGS } from '../lib/config.js';

const UNIT_PATH = resolve('deploy/sluice.service');
const ENV_PATH = resolve('deploy/env.example');
const SERVER_JS = resolve('dist/server.js');

/** Where systemd (>= 239) looks up a bare ExecStart command such as `node`. */
const SYSTEMD_SEARCH_PATH = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];

const analyzer = spawnSync('systemd-analyze', ['--version'], { encoding: 'utf8' });
const noAnalyzer = analyzer.error === undefined && analyzer.status === 0 ? false : 'systemd-analyze is not installed (apt-get install -y --no-install-recommends systemd)';
if (noAnalyzer !== false) process.stdout.write(`# deploy.test.ts: skipping verify tests: ${noAnalyzer}\n`);

interface Directive {
  readonly section: string;
  readonly key: string;
  readonly value: string;
}

/** The unit as [Section] key=value directives, comments and blank lines dropped. */
function parseUnit(text: string): Directive[] {
  const out: Directive[] = [];
  let section = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const header = /^\[(.+)\]$/.exec(line);
    if (header) {
      section = header[1] as string;
      continue;
    }
    const eq = line.indexOf('=');
    assert.notEqual(eq, -1, `not a key=value line: ${line}`);
    out.push({ section, key: line.slice(0, eq).trim(), value: line.slice(eq + 1).trim() });
  }
  return out;
}

/** Runs `systemd-analyze verify` on a unit file; output is everything it printed, trimmed. */
function verify(path: string): { status: number | null; output: string } {
  const r = spawnSync('systemd-analyze', ['verify', path], {
    encoding: 'utf8',
    // Without a running systemd it must not try to talk to a manager or a pager.
    env: { ...process.env, SYSTEMD_PAGER: 'cat', SYSTEMD_LOG_COLOR: '0' },
  });
  return { status: r.status, output: `${r.stdout}${r.stderr}`.trim() };
}

/** Lines of verify's output that are about our unit (it may also chatter about host units). */
function aboutUnit(output: string, dir: string): string[] {
  return output.split('\n').filter((l) => l.includes('sluice') || l.includes(dir));
}

describe('deploy/sluice.service', () => {
  let unitText = '';
  let dir = '';

  before(async () => {
    unitText = await readFile(UNIT_PATH, 'utf8');
    dir = await mkdtemp(join(tmpdir(), 'sluice-unit-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  /**
   * The shipped unit with ExecStart pointing at this machine's node and this checkout's build,
   * so verify checks real paths instead of complaining that /opt/sluice is not installed.
   * The file keeps the name sluice.service: verify derives the unit name from it.
   */
  async function localCopy(edit: (text: string) => string = (t) => t): Promise<string> {
    const path = join(dir, 'sluice.service');
    const text = unitText.replace(/^ExecStart=.*$/m, `ExecStart=${process.execPath} ${SERVER_JS}`);
    await writeFile(path, edit(text));
    return path;
  }

  test('verifies with no warning (ExecStart pointed at this node and this build)', { skip: noAnalyzer }, async () => {
    assert.ok(existsSync(SERVER_JS), `${SERVER_JS} is missing: build first (npx tsc -p tsconfig.json)`);
    const path = await localCopy();
    const { status, output } = verify(path);
    if (output !== '') process.stdout.write(`# systemd-analyze verify printed:\n# ${output.split('\n').join('\n# ')}\n`);
    assert.equal(status, 0, output);
    assert.deepEqual(aboutUnit(output, dir), []);
  });

  test('the shipped file itself verifies when node is where systemd looks for a bare "node"', { skip: noAnalyzer }, async (t) => {
    const found = SYSTEMD_SEARCH_PATH.map((d) => join(d, 'node')).find((p) => existsSync(p));
    if (found === undefined) return t.skip(`no node in ${SYSTEMD_SEARCH_PATH.join(':')}`);
    const { status, output } = verify(UNIT_PATH);
    assert.equal(status, 0, output);
    assert.deepEqual(aboutUnit(output, resolve('deploy')), []);
  });

  test('verify does report a broken unit (so "no warning" above means something)', { skip: noAnalyzer }, async () => {
    // An unknown key and a bad value only earn warnings and exit code 0: the output is the signal.
    const path = await localCopy((t) => t.replace('[Service]\n', '[Service]\nNoSuchSetting=1\nProtectSystem=bogus\n'));
    const { output } = verify(path);
    const lines = aboutUnit(output, dir);
    assert.ok(lines.some((l) => l.includes('NoSuchSetting')), output);
    assert.ok(lines.some((l) => /protect system/i.test(l)), output);
  });

  test('security exposure stays low (systemd-analyze security --offline)', { skip: noAnalyzer }, async (t) => {
    const path = await localCopy();
    const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', path], { encoding: 'utf8' });
    const m = /Overall exposure level for sluice\.service: ([\d.]+)/.exec(`${r.stdout}${r.stderr}`);
    // --offline arrived in systemd 250; older versions cannot score a unit without a manager.
    if (m === null) return t.skip(`systemd-analyze security --offline unsupported: ${(r.stderr || r.stdout).trim().split('\n')[0]}`);
    assert.ok(Number(m[1]) <= 2.5, `exposure ${m[1]} (systemd rates 0 safe .. 10 unsafe)`);
  });

  test('has the settings the issue asks for, and none that break node', () => {
    const d = parseUnit(unitText);
    const values = (key: string): string[] => d.filter((x) => x.section === 'Service' && x.key === key).map((x) => x.value);
    const one = (key: string): string => {
      const v = values(key);
      assert.equal(v.length, 1, `${key} set ${v.length} times`);
      return v[0] as string;
    };
    assert.match(one('ExecStart'), /^(\/\S*\/)?node \/opt\/sluice\/dist\/server\.js$/);
    // Type=notify would need sd_notify's datagram socket, which node cannot open on its own.
    assert.equal(one('Type'), 'exec');
    assert.equal(one('Restart'), 'on-failure');
    assert.equal(one('EnvironmentFile'), '-/etc/sluice/env');
    assert.equal(one('StateDirectory'), 'sluice');
    assert.ok(values('Environment').includes('DATA_DIR=/var/lib/sluice'), 'DATA_DIR points at the StateDirectory');
    assert.equal(one('DynamicUser'), 'yes');
    assert.equal(one('NoNewPrivileges'), 'yes');
    assert.equal(one('ProtectSystem'), 'strict');
    assert.equal(one('ProtectHome'), 'yes');
    assert.equal(one('PrivateTmp'), 'yes');
    assert.equal(one('ReadWritePaths'), '/var/lib/sluice');
    assert.ok(Number(one('LimitNOFILE')) >= 65536, 'LimitNOFILE raised');
    assert.equal(one('KillSignal'), 'SIGTERM');
    // systemctl reload: SIGHUP, which reloads TLS_CERT and TLS_KEY (issue #17).
    assert.match(one('ExecReload'), /^(\/\S*\/)?kill -HUP \$MAINPID$/);
    // systemd's SIGKILL must come after sluice's own grace (30 s) plus the abort wait (5 s).
    const stop = /^(\d+)s?$/.exec(one('TimeoutStopSec'));
    assert.ok(stop !== null && Number(stop[1]) > 35, `TimeoutStopSec ${one('TimeoutStopSec')} must exceed the 30 s grace`);
    // V8's JIT needs writable+executable pages: with this set, node dies at start.
    assert.deepEqual(
      values('MemoryDenyWriteExecute').filter((v) => v !== 'no'),
      [],
      'MemoryDenyWriteExecute must not be enabled',
    );
    assert.ok(d.some((x) => x.section === 'Install' && x.key === 'WantedBy' && x.value === 'multi-user.target'));
  });
});

describe('deploy/env.example', () => {
  test('documents every setting, with its default, and nothing else', async () => {
    const text = await readFile(ENV_PATH, 'utf8');
    const shown = new Map<string, string>();
    for (const line of text.split('\n')) {
      const m = /^#?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line);
      if (m) shown.set(m[1] as string, m[2] as string);
    }
    for (const s of SETTINGS) {
      assert.ok(shown.has(s.env), `${s.env} is not in deploy/env.example`);
      // DATA_DIR shows the unit's value (/var/lib/sluice), not the development default.
      if (s.env !== 'DATA_DIR') assert.equal(shown.get(s.env), s.fallback, `${s.env} default`);
    }
    assert.deepEqual([...shown.keys()].filter((k) => !SETTINGS.some((s) => s.env === k)), [], 'unknown settings');
  });

  test('is valid as an EnvironmentFile: only comments, blanks and KEY=value lines', async () => {
    const text = await readFile(ENV_PATH, 'utf8');
    const bad = text.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#') && !/^[A-Z][A-Z0-9_]*=\S*$/.test(l));
    assert.deepEqual(bad, []);
  });
});
