import { readFileSync } from 'node:fs';
import path from 'node:path';

/** Debian's nginx (package nginx-light, installed by .ci/run when missing). */
export const NGINX = process.env.KEYWARD_TEST_NGINX ?? '/usr/sbin/nginx';

/** The README's ```nginx block, as written: the test runs what a reader would paste. */
export function readmeNginxBlock(): string {
  const readme = readFileSync(path.resolve(__dirname, '../../README.md'), 'utf8');
  const block = /```nginx\n([\s\S]*?)```/.exec(readme)?.[1];
  if (!block) throw new Error('README.md has no ```nginx block');
  return block;
}

export interface NginxSetup {
  /** A directory of the test's own for nginx's pid, logs and temporary files. */
  dir: string;
  listen: number;
  keyward: string;
  upstream: string;
  verifierToken: string;
}

/**
 * A whole nginx.conf around the README's block: the addresses and token of the test put in
 * place of the README's, and what a test run needs around it (no daemon, files in `dir`).
 */
export function nginxConfig(setup: NginxSetup): string {
  const block = readmeNginxBlock()
    .replace('server 127.0.0.1:3000;', `server ${setup.keyward};`)
    .replaceAll('http://127.0.0.1:8081', `http://${setup.upstream}`)
    .replace('listen 8080;', `listen 127.0.0.1:${setup.listen};`)
    .replace('"Bearer kwop_..."', `"Bearer ${setup.verifierToken}"`);
  const d = setup.dir;
  return `daemon off;
master_process off;
worker_processes 1;
pid ${d}/nginx.pid;
error_log ${d}/error.log warn;
events { worker_connections 64; }
http {
  access_log off;
  client_body_temp_path ${d}/client_body;
  proxy_temp_path ${d}/proxy;
  fastcgi_temp_path ${d}/fastcgi;
  uwsgi_temp_path ${d}/uwsgi;
  scgi_temp_path ${d}/scgi;
${block}
}
`;
}
