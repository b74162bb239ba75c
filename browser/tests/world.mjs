// What the browser tests stand on: the world of `console-world` (canopy-api
// with its relay and worker, a database and an SMTP server of its own,
// seeded), and headless Chromium from Debian's package.

import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync } from 'node:fs';
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
  // The world's logs share its standard output; its own lines are marked.
  const answers = [];
  const world = await new Promise((resolve, reject) => {
    child.on('exit', (code) => reject(new Error(`console-world ended (${code}):\n${log.join('')}`)));
    let described = false;
    lines.on('line', (line) => {
      if (!line.startsWith(MARK)) {
        log.push(`${line}\n`);
      } else if (!described) {
        described = true;
        resolve(JSON.parse(line.slice(MARK.length)));
      } else {
        answers.push(JSON.parse(line.slice(MARK.length)));
      }
    });
  });
  world.log = log;
  /** Runs a command of the world's (such as `expire-links`). */
  world.command = async (name) => {
    child.stdin.write(`${name}\n`);
    await until(`the world to do ${name}`, () => answers.some((a) => a.done === name));
    answers.splice(0, answers.length);
  };
  /** The emails the world's SMTP server received for `to`, oldest first. */
  world.mailTo = (to) =>
    readdirSync(world.mail)
      .sort()
      .map((file) => JSON.parse(readFileSync(join(world.mail, file), 'utf8')))
      .filter((mail) => mail.to === to);
  /** Waits for the `n`th email to `to`; answers it with its first link. */
  world.waitForMail = async (to, n = 1) => {
    const mails = await until(`email ${n} to ${to}`, () => {
      const found = world.mailTo(to);
      return found.length >= n ? found : null;
    });
    const mail = mails[n - 1];
    mail.link = mail.text.match(/https?:\/\/\S+/)[0];
    return mail;
  };
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
