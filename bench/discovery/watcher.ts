/**
 * Child process for bench/discovery/main.ts: watches a service in etcd through the BUILT
 * `@trellis/discovery` and prints one line per instance id as soon as it appears.
 *
 *   node --import tsx bench/discovery/watcher.ts <etcd endpoint> <service>
 */
import { etcdDiscovery } from '@trellis/discovery';

const [endpoint, service] = process.argv.slice(2);
const etcd = etcdDiscovery({ endpoints: [endpoint!] });
let known = new Set<string>();
let ready = false;
etcd.watch(service!, (instances) => {
  const next = new Set(instances.map((i) => i.id));
  for (const id of next) if (!known.has(id)) process.stdout.write(`seen ${id}\n`);
  known = next;
  if (!ready) {
    ready = true;
    process.stdout.write('ready\n');
  }
});
process.on('SIGTERM', () => {
  void etcd.close().then(() => process.exit(0));
});
