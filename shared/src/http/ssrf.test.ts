import { describe, expect, it } from 'vitest';
import { deniedByDns, deniedHostReason, isPrivateHost } from './ssrf.ts';

/** URLs a customer might send that must not be fetched; each is checked through the WHATWG URL parser too. */
const DENIED = [
  // Loopback and "this host", every spelling.
  'https://localhost/',
  'https://localhost./',
  'https://LOCALHOST../',
  'https://api.localhost/',
  'https://127.0.0.1/',
  'https://127.0.0.1./',
  'https://127.1/',
  'https://127.0.1/',
  'https://0x7f.1/',
  'https://0x7f000001/',
  'https://2130706433/',
  'https://017700000001/',
  'https://0177.0.0.1/',
  'https://0/',
  'https://0.0.0.0/',
  'https://%6c%6f%63%61%6c%68%6f%73%74/',
  'https://ｌｏｃａｌｈｏｓｔ/',
  'https://127。0。0。1/',
  'https://[::1]/',
  'https://[::]/',
  'https://[0:0:0:0:0:0:0:1]/',
  'https://[::7f00:1]/',
  'https://[::127.0.0.1]/',
  'https://[::ffff:127.0.0.1]/',
  'https://[::ffff:7f00:1]/',
  'https://[::ffff:0:7f00:1]/',
  'https://[0:0:0:0:0:ffff:127.0.0.1]/',
  // Cloud metadata by address and name.
  'https://169.254.169.254/latest/meta-data/',
  'https://0xa9fea9fe/',
  'https://2852039166/',
  'https://[::ffff:a9fe:a9fe]/',
  'https://[64:ff9b::a9fe:a9fe]/',
  'https://[64:ff9b::169.254.169.254]/',
  'https://[64:ff9b:1::a9fe:a9fe]/',
  'https://[2002:a9fe:a9fe::]/',
  'https://[fd00:ec2::254]/',
  'https://100.100.100.200/',
  'https://192.0.0.192/',
  'https://metadata/',
  'https://metadata./',
  'https://metadata.google.internal/',
  'https://metadata.google.internal./',
  'https://METADATA.GOOGLE.INTERNAL/',
  'https://metadata.goog/',
  'https://metadata.azure.com/',
  'https://instance-data/',
  'https://instance-data.ec2.internal/',
  'https://kubernetes.default.svc/',
  'https://kubernetes.default.svc.cluster.local/',
  // Private, CGNAT, link-local, multicast, benchmark, documentation, reserved.
  'https://10.0.0.1/',
  'https://10.255.255.255/',
  'https://172.16.0.1/',
  'https://172.31.255.255/',
  'https://192.168.1.1/',
  'https://100.64.0.1/',
  'https://169.254.0.1/',
  'https://198.18.0.1/',
  'https://198.19.255.255/',
  'https://192.0.2.1/',
  'https://203.0.113.9/',
  'https://224.0.0.1/',
  'https://239.255.255.250/',
  'https://240.0.0.1/',
  'https://255.255.255.255/',
  'https://[fc00::1]/',
  'https://[fe80::1]/',
  'https://[fec0::1]/',
  'https://[ff02::1]/',
  'https://[2001:db8::1]/',
  'https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/', // Teredo
  'https://[2002:7f00:1::]/', // 6to4 of 127.0.0.1
  'https://[2002:808:808::]/', // 6to4 of a public address: still a tunnel, refused
  'https://[100::1]/', // discard-only
  'https://[64:ff9b::808:808]/', // NAT64 of a public address: the translator is the operator's, refused
  // Local-only names and rebinding helpers.
  'https://printer.local/',
  'https://db.internal/',
  'https://router.lan/',
  'https://nas.home.arpa/',
  'https://1.0.0.127.in-addr.arpa/',
  'https://127.0.0.1.nip.io/',
  'https://app.10.0.0.1.sslip.io/',
  'https://10-0-0-1.sslip.io/',
  'https://anything.localtest.me/',
  'https://lvh.me/',
  'https://10.0.0.1.example.com/',
  'https://intranet/',
];

/** Public hosts that must stay reachable. */
const ALLOWED = [
  'https://example.com/a.png',
  'https://images.example.org./a.png',
  'https://cdn.jsdelivr.net/x.png',
  'https://8.8.8.8/',
  'https://1.1.1.1/',
  'https://[2606:4700:4700::1111]/',
  'https://[2a00:1450:4007:80e::200e]/',
  'https://[::ffff:8.8.8.8]/',
  'https://172.32.0.1/',
  'https://100.128.0.1/',
  'https://192.169.0.1/',
  'https://0xdeadbeef.example.com/',
  'https://localhost-images.example.com/',
  'https://internal.example.com/',
];

describe('SSRF host filter', () => {
  it.each(DENIED)('refuses %s', (url) => {
    let hostname: string;
    try {
      hostname = new URL(url).hostname;
    } catch {
      return; // the URL parser refuses it already
    }
    expect(deniedHostReason(hostname), `${url} -> ${hostname}`).not.toBeNull();
  });

  it.each(ALLOWED)('allows %s', (url) => {
    expect(deniedHostReason(new URL(url).hostname)).toBeNull();
  });

  it('judges raw host strings the same way a URL parser would read them', () => {
    for (const raw of [
      '127.0.0.1',
      '0x7f.0.0.1',
      '0177.1',
      '2130706433',
      '::ffff:127.0.0.1',
      '[::1]',
      'fe80::1%eth0',
      'LocalHost.',
      'metadata..',
      '',
    ]) {
      expect(isPrivateHost(raw), raw).toBe(true);
    }
    expect(isPrivateHost('example.com.')).toBe(false);
  });

  it('refuses names that resolve to a private address (DNS-over-HTTPS JSON answers)', async () => {
    const answers: Record<string, { type: number; data: string }[]> = {
      'rebind.example.com/A': [
        { type: 5, data: 'alias.example.com.' },
        { type: 1, data: '10.0.0.5' },
      ],
      'v6.example.com/AAAA': [{ type: 28, data: '::ffff:169.254.169.254' }],
      'ok.example.com/A': [{ type: 1, data: '93.184.216.34' }],
    };
    // The JSON form of RFC 8484 as Cloudflare's and Google's resolvers serve it.
    const doh = (async (input: RequestInfo | URL) => {
      const url = new URL(String(input));
      const key = `${url.searchParams.get('name')}/${url.searchParams.get('type')}`;
      return Response.json({ Status: 0, Answer: answers[key] ?? [] });
    }) as typeof fetch;
    const dohUrl = 'https://dns.test/dns-query';
    expect(await deniedByDns('rebind.example.com', dohUrl, doh)).toMatch(/10\.0\.0\.5/);
    expect(await deniedByDns('v6.example.com.', dohUrl, doh)).toMatch(/169\.254/);
    expect(await deniedByDns('ok.example.com', dohUrl, doh)).toBeNull();
    expect(await deniedByDns('127.0.0.1', dohUrl, doh)).not.toBeNull();
  });
});
