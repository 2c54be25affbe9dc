import net, { type AddressInfo } from 'node:net';

/**
 * A TCP proxy in front of a shared server (Redis), so a test can take the server away from one
 * process without stopping it for anyone else:
 * - `hang()`: every connection, open or new, is accepted and kept but nothing is forwarded either
 *   way (a hung server or a black-holed network: no error, no answer);
 * - `refuse()`: every connection is dropped and nothing listens on the port (connection refused);
 * - `pass()`: forwards again, on the same port. Connections that hung are dropped first, as a
 *   restarted server drops them: what they swallowed is gone, so a reply must not be matched to a
 *   request that never arrived.
 */
export class TcpProxy {
  private server: net.Server | null = null;
  private readonly sockets = new Set<net.Socket>();
  private mode: 'pass' | 'hang' = 'pass';
  private port = 0;

  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  static forUrl(url: string): TcpProxy {
    const parsed = new URL(url);
    return new TcpProxy(parsed.hostname, parsed.port ? Number(parsed.port) : 6379);
  }

  /** The proxy's URL in the form of `template` (scheme, credentials and path kept). */
  url(template: string): string {
    const parsed = new URL(template);
    parsed.hostname = '127.0.0.1';
    parsed.port = String(this.port);
    return parsed.toString().replace(/\/$/, '');
  }

  async start(): Promise<void> {
    await this.listen();
  }

  async pass(): Promise<void> {
    if (this.mode === 'hang') this.dropAll();
    this.mode = 'pass';
    if (!this.server) await this.listen();
  }

  hang(): void {
    this.mode = 'hang';
  }

  async refuse(): Promise<void> {
    const server = this.server;
    this.server = null;
    this.dropAll();
    if (server) await new Promise<void>((done) => server.close(() => done()));
  }

  async close(): Promise<void> {
    await this.refuse();
  }

  private dropAll(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
  }

  private listen(): Promise<void> {
    const server = net.createServer((client) => this.accept(client));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => {
        this.port = (server.address() as AddressInfo).port;
        resolve();
      });
    });
  }

  private accept(client: net.Socket): void {
    const upstream = net.connect(this.targetPort, this.targetHost);
    this.sockets.add(client);
    this.sockets.add(upstream);
    const drop = () => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    // Forwarded by hand rather than piped, so hanging can swallow bytes on a live connection.
    client.on('data', (chunk) => {
      if (this.mode === 'pass') upstream.write(chunk);
    });
    upstream.on('data', (chunk) => {
      if (this.mode === 'pass') client.write(chunk);
    });
    client.on('error', drop).on('close', drop);
    upstream.on('error', drop).on('close', drop);
  }
}
