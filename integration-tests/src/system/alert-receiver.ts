// A local webhook receiver for the hub's alerts (the notifier's `webhook` sink): it keeps
// every alert it is sent, in order.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A running receiver: `url` for the hub's notify config, `alerts` as they arrive. */
export interface AlertReceiver<T> {
  readonly url: string;
  readonly alerts: T[];
  stop(): Promise<void>;
}

/** Starts a receiver on a loopback port the kernel chooses; alerts are parsed as JSON. */
export async function startAlertReceiver<T>(): Promise<AlertReceiver<T>> {
  const alerts: T[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as T);
      res.writeHead(200).end('ok');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    alerts,
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
