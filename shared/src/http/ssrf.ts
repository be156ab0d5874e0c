import ipaddr from 'ipaddr.js';

/**
 * Server-side request forgery guard: decides whether a server may fetch a URL given by a customer (image
 * URLs, webhook targets). Deny by default for addresses: only global unicast IPv4 and IPv6 (2000::/3) pass,
 * and every IPv6 form that embeds or translates to an IPv4 address (mapped, compatible, SIIT, NAT64, 6to4,
 * Teredo) is judged by that IPv4 address or refused. Names are normalised (case, trailing dots) and refused
 * when they are single-label (resolved through search domains: `metadata`, `instance-data`, `kubernetes`),
 * under a local-only suffix (`.localhost`, `.internal`, `.local`, ...), a cloud metadata name, or a wildcard
 * DNS service that maps names to addresses (`127.0.0.1.nip.io`).
 */

/** IPv4 ranges no customer URL may reach (RFC 6890 special-purpose and cloud metadata). */
const DENIED_V4 = [
  '0.0.0.0/8', // "this network"
  '10.0.0.0/8', // private
  '100.64.0.0/10', // CGNAT; also Alibaba metadata 100.100.100.200
  '127.0.0.0/8', // loopback
  '169.254.0.0/16', // link-local; AWS/GCP/Azure/DO metadata 169.254.169.254
  '172.16.0.0/12', // private
  '192.0.0.0/24', // IETF protocol assignments; Oracle metadata 192.0.0.192
  '192.0.2.0/24', // documentation
  '192.31.196.0/24', // AS112
  '192.52.193.0/24', // AMT
  '192.88.99.0/24', // 6to4 relay anycast
  '192.168.0.0/16', // private
  '192.175.48.0/24', // AS112
  '198.18.0.0/15', // benchmarking
  '198.51.100.0/24', // documentation
  '203.0.113.0/24', // documentation
  '224.0.0.0/4', // multicast
  '240.0.0.0/4', // reserved and broadcast
].map((cidr) => ipaddr.IPv4.parseCIDR(cidr));

/** Global unicast IPv6 ranges that are still not a public host (or that tunnel to IPv4). */
const DENIED_V6_IN_GLOBAL = [
  '2001::/23', // IETF protocol assignments (includes Teredo 2001::/32, benchmarking, ORCHID)
  '2001:db8::/32', // documentation
  '2002::/16', // 6to4: reaches an embedded IPv4 through relays
  '3fff::/20', // documentation
].map((cidr) => ipaddr.IPv6.parseCIDR(cidr));

/** Names of cloud metadata services (besides their addresses and the single-label names refused anyway). */
const METADATA_NAMES = new Set([
  'metadata.google.internal',
  'metadata.goog',
  'metadata.azure.com',
  'metadata.azure.internal',
  'instance-data.ec2.internal',
  'metadata.tencentyun.com',
  'metadata.platformequinix.com',
  'metadata.packet.net',
]);

/** Suffixes that only resolve inside a private network or to the host itself. */
const LOCAL_SUFFIXES = [
  'localhost',
  'local',
  'localdomain',
  'internal',
  'intranet',
  'private',
  'corp',
  'home',
  'lan',
  'home.arpa',
  'arpa',
  'svc',
  'cluster.local',
  'test',
  'invalid',
  'example',
  'onion',
];

/** Public wildcard DNS services whose names resolve to any address written in them (DNS rebinding aids). */
const WILDCARD_DNS = [
  'nip.io',
  'sslip.io',
  'xip.io',
  'nip.direct',
  'localtest.me',
  'lvh.me',
  'vcap.me',
  'lacolhost.com',
  'traefik.me',
  'localhost.direct',
  'backname.io',
  '1u.ms',
  'rbndr.us',
];

/** Lower-case, without brackets or trailing dots: the form every check below compares. */
export function normalizeHost(hostname: string): string {
  return hostname
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.+$/, '');
}

function v4Denied(address: ipaddr.IPv4): boolean {
  return DENIED_V4.some((range) => address.match(range));
}

/** The IPv4 address an IPv6 address stands for (mapped, compatible, SIIT, NAT64), or null. */
function embeddedV4(address: ipaddr.IPv6): ipaddr.IPv4 | null {
  const p = address.parts;
  const tail = () => new ipaddr.IPv4([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
  const zeros = (from: number, to: number) => p.slice(from, to).every((x) => x === 0);
  // ::a.b.c.d (compatible), ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (SIIT), 64:ff9b::a.b.c.d (NAT64).
  if (zeros(0, 6)) return tail();
  if (zeros(0, 5) && p[5] === 0xffff) return tail();
  if (zeros(0, 4) && p[4] === 0xffff && p[5] === 0) return tail();
  if (p[0] === 0x64 && p[1] === 0xff9b && zeros(2, 6)) return tail();
  return null;
}

function v6Denied(address: ipaddr.IPv6): boolean {
  const v4 = embeddedV4(address);
  // A translated address is only as public as its IPv4 address; other translators are refused outright.
  if (v4) return v4Denied(v4) || address.parts[0] === 0x64;
  if (!address.match(ipaddr.IPv6.parseCIDR('2000::/3'))) return true; // ULA, link-local, multicast, NAT64 local
  return DENIED_V6_IN_GLOBAL.some((range) => address.match(range));
}

/** `text` as an address when it is an IP literal in any form a resolver accepts (dotted, short, octal, hex, decimal, IPv6). */
function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  if (text.includes(':')) return ipaddr.IPv6.isValid(text) ? ipaddr.IPv6.parse(text) : null;
  return ipaddr.IPv4.isValid(text) ? ipaddr.IPv4.parse(text) : null;
}

/** Why a host is refused, or null when it may be fetched. Takes a URL's `hostname` or a bare address. */
export function deniedHostReason(hostname: string): string | null {
  const host = normalizeHost(hostname);
  if (!host) return 'empty host';
  if (host.includes('%')) return 'zone ids and escapes are not accepted in hosts';
  // As URL parsers do: a host whose last label is a number (decimal, octal or 0x hex) is an IPv4 address.
  if (host.includes(':') || /(^|\.)(\d+|0x[0-9a-f]*)$/.test(host)) {
    const address = parseAddress(host);
    if (!address) return 'not a valid address';
    const denied =
      address.kind() === 'ipv4' ? v4Denied(address as ipaddr.IPv4) : v6Denied(address as ipaddr.IPv6);
    return denied ? 'private, reserved or metadata address' : null;
  }
  if (!host.includes('.')) return 'single-label names resolve inside private networks';
  if (METADATA_NAMES.has(host)) return 'cloud metadata service';
  const under = (suffix: string) => host === suffix || host.endsWith(`.${suffix}`);
  if (LOCAL_SUFFIXES.some(under)) return 'local-only name';
  if (WILDCARD_DNS.some(under)) return 'wildcard DNS name that maps to arbitrary addresses';
  if (/^(\d{1,3}[.-]){3}\d{1,3}\./.test(host)) return 'name embeds an address';
  return null;
}

/** True for hosts a server-side fetch must never reach; see {@link deniedHostReason}. */
export function isPrivateHost(hostname: string): boolean {
  return deniedHostReason(hostname) !== null;
}

/** A DNS-over-HTTPS JSON answer (RFC 8484 JSON form as served by Cloudflare and Google). */
interface DohAnswer {
  Status?: number;
  Answer?: { type: number; data: string }[];
}

/**
 * Resolves `hostname` (A and AAAA) through a DNS-over-HTTPS JSON endpoint and returns why one of its
 * addresses is refused, or null. Workers cannot resolve before `fetch`, so this narrows (does not close) the
 * DNS-rebinding window: a name can answer differently to the fetch a moment later.
 */
export async function deniedByDns(
  hostname: string,
  dohUrl: string,
  fetcher: typeof fetch = fetch,
  timeoutMs = 2000,
): Promise<string | null> {
  const host = normalizeHost(hostname);
  if (parseAddress(host)) return deniedHostReason(host);
  const answers = await Promise.all(
    ['A', 'AAAA'].map(async (type) => {
      const url = `${dohUrl}?name=${encodeURIComponent(host)}&type=${type}`;
      const response = await fetcher(url, {
        headers: { accept: 'application/dns-json' },
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new Error(`DNS-over-HTTPS answered ${response.status}`);
      return ((await response.json()) as DohAnswer).Answer ?? [];
    }),
  );
  for (const record of answers.flat()) {
    if (record.type !== 1 && record.type !== 28) continue; // A, AAAA (CNAMEs are followed by the resolver)
    const reason = deniedHostReason(record.data);
    if (reason) return `${host} resolves to ${record.data}: ${reason}`;
  }
  return null;
}
