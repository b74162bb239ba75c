// What the browser tests stand on: the world of `console-world` (canopy-api
// with its relay and worker, a database and an SMTP server of its own,
// seeded), and headless Chromium from Debian's package.

import { spawn } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = join(here, '..', '..');
export const artifacts = join(here, '..', 'artifacts');
const MARK = 'console-world: ';

/** Starts the world; resolves to its description and a `stop`. */
export async function startWorld() {
  const child = spawn('cargo', ['run', '-q', '-p', 'canopy-tests', '--bin', 'console-world'], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const log = [];
  child.stderr.on('data', (chunk) => {
    log.push(chunk.toString());
    if (log.length > 200) log.shift();
  });
  const lines = createInterface({ input: child.stdout });
  const world = await new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`console-world ended (${code}):\n${log.join('')}`)));
    // The world's logs share its standard output; its description is marked.
    lines.on('line', (line) => {
      if (line.startsWith(MARK)) resolve(JSON.parse(line.slice(MARK.length)));
      else log.push(`${line}\n`);
    });
  });
  world.log = log;
  world.stop = () =>
    new Promise((resolve) => {
      child.removeAllListeners('exit');
      child.on('exit', resolve);
      child.stdin.end();
    });
  return world;
}

export async function startBrowser() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox'],
  });
}

/** Writes a screenshot of `page` to the artifacts folder; answers its path. */
export async function screenshot(page, name) {
  mkdirSync(artifacts, { recursive: true });
  const path = join(artifacts, `${name}.png`);
  await page.screenshot({ path, fullPage: true });
  return path;
}

/** Polls `probe` until it answers something truthy, or fails after `ms`. */
export async function until(what, probe, ms = 20000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await probe();
    if (last) return last;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out waiting for ${what} (last: ${JSON.stringify(last)})`);
}

/** Runs GraphQL against the world with its tenant's API key. */
export async function graphql(world, query, variables = {}) {
  const response = await fetch(`${world.url}/graphql`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${world.apiKey}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}
