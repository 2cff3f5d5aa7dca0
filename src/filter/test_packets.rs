//! Synthetic packets for the kernel tests of packet selection: Ethernet
//! (with and without an 802.1Q tag) carrying IPv4 (with and without
//! options), IPv6, TCP, UDP, ICMP, ICMPv6 and ARP, whole and cut short.

/// A test packet: its bytes from the Ethernet header, and where the header
/// after it (IPv4, IPv6 or ARP) starts.
pub struct Packet {
    pub name: String,
    pub bytes: Vec<u8>,
    pub l3_at: usize,
}

pub const MAC_A: [u8; 6] = [0x00, 0x11, 0x22, 0x33, 0x44, 0x55];
pub const MAC_B: [u8; 6] = [0x02, 0x00, 0x00, 0x00, 0x00, 0x02];
pub const IP_A: [u8; 4] = [10, 0, 0, 1];
pub const IP_B: [u8; 4] = [10, 0, 0, 2];
pub const IP6_A: [u8; 16] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1];
pub const IP6_B: [u8; 16] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2];

pub fn ethernet(ethertype: u16, vlan: Option<u16>, payload: &[u8]) -> (Vec<u8>, usize) {
    let mut f = Vec::new();
    f.extend(MAC_B);
    f.extend(MAC_A);
    if let Some(id) = vlan {
        f.extend(0x8100u16.to_be_bytes());
        f.extend(id.to_be_bytes());
    }
    f.extend(ethertype.to_be_bytes());
    let l3_at = f.len();
    f.extend(payload);
    (f, l3_at)
}

/// IPv4 header (with `options` words of options) and payload.
pub fn ipv4(proto: u8, src: [u8; 4], dst: [u8; 4], options: usize, payload: &[u8]) -> Vec<u8> {
    let header = 20 + 4 * options;
    let mut p = vec![0x40 | (header / 4) as u8, 0];
    p.extend(((header + payload.len()) as u16).to_be_bytes());
    p.extend([0x12, 0x34, 0x40, 0x00, 64, proto, 0, 0]);
    p.extend(src);
    p.extend(dst);
    p.extend(std::iter::repeat_n(1u8, 4 * options)); // NOPs
    p.extend(payload);
    p
}

/// TTLs of 63 and 65 make `ip[8] - 64` and `ip[8] - 63` zero or not.
pub fn with_ttl(mut ipv4: Vec<u8>, ttl: u8) -> Vec<u8> {
    ipv4[8] = ttl;
    ipv4
}

pub fn ipv6(next: u8, src: [u8; 16], dst: [u8; 16], payload: &[u8]) -> Vec<u8> {
    let mut p = vec![0x60, 0, 0, 0];
    p.extend((payload.len() as u16).to_be_bytes());
    p.extend([next, 64]);
    p.extend(src);
    p.extend(dst);
    p.extend(payload);
    p
}

pub fn tcp(sport: u16, dport: u16, flags: u8, data: usize) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend(sport.to_be_bytes());
    t.extend(dport.to_be_bytes());
    t.extend([0, 0, 0, 1, 0, 0, 0, 0, 0x50, flags, 0xff, 0xff, 0, 0, 0, 0]);
    t.extend(std::iter::repeat_n(0x5a, data));
    t
}

pub fn udp(sport: u16, dport: u16, data: usize) -> Vec<u8> {
    let mut u = Vec::new();
    u.extend(sport.to_be_bytes());
    u.extend(dport.to_be_bytes());
    u.extend(((8 + data) as u16).to_be_bytes());
    u.extend([0, 0]);
    u.extend(std::iter::repeat_n(0xa5, data));
    u
}

pub fn icmp(kind: u8, data: usize) -> Vec<u8> {
    let mut i = vec![kind, 0, 0, 0, 0, 1, 0, 1];
    i.extend(std::iter::repeat_n(0x42, data));
    i
}

pub fn arp() -> Vec<u8> {
    let mut a = vec![0, 1, 8, 0, 6, 4, 0, 1];
    a.extend(MAC_A);
    a.extend(IP_A);
    a.extend([0; 6]);
    a.extend(IP_B);
    a
}

pub fn packets() -> Vec<Packet> {
    let ip = |payload: Vec<u8>| ethernet(0x0800, None, &payload);
    let ip6 = |payload: Vec<u8>| ethernet(0x86dd, None, &payload);
    let cases: Vec<(&str, (Vec<u8>, usize))> = vec![
        (
            "icmp echo 10.0.0.1>10.0.0.2",
            ip(ipv4(1, IP_A, IP_B, 0, &icmp(8, 56))),
        ),
        (
            "icmp reply 10.0.0.2>10.0.0.1 ttl 65",
            ip(with_ttl(ipv4(1, IP_B, IP_A, 0, &icmp(0, 56)), 65)),
        ),
        (
            "icmp echo 10.0.0.1>10.0.0.3",
            ip(ipv4(1, IP_A, [10, 0, 0, 3], 0, &icmp(8, 8))),
        ),
        (
            "tcp syn :443",
            ip(ipv4(6, IP_A, IP_B, 0, &tcp(40000, 443, 0x02, 0))),
        ),
        (
            "tcp ack 443: 260 bytes",
            ip(ipv4(6, IP_B, IP_A, 0, &tcp(443, 40000, 0x10, 200))),
        ),
        (
            "tcp syn :80 ip options",
            ip(ipv4(6, IP_A, IP_B, 2, &tcp(1234, 80, 0x02, 0))),
        ),
        (
            "tcp :443 ip options 300 bytes",
            ip(ipv4(6, IP_A, IP_B, 10, &tcp(1234, 443, 0x18, 200))),
        ),
        ("udp :53", ip(ipv4(17, IP_A, IP_B, 0, &udp(5353, 53, 30)))),
        (
            "udp 53: big ttl 63",
            ip(with_ttl(ipv4(17, IP_B, IP_A, 0, &udp(53, 5353, 400)), 63)),
        ),
        ("ip fragment", {
            let mut p = ipv4(17, IP_A, IP_B, 0, &udp(5353, 53, 8));
            p[6] = 0x20; // more fragments, offset 0x100
            p[7] = 0x20;
            ip(p)
        }),
        (
            "ipv6 tcp syn :443",
            ip6(ipv6(6, IP6_A, IP6_B, &tcp(40000, 443, 0x02, 0))),
        ),
        (
            "ipv6 tcp 200 bytes",
            ip6(ipv6(6, IP6_B, IP6_A, &tcp(22, 40000, 0x18, 200))),
        ),
        (
            "ipv6 icmpv6 echo",
            ip6(ipv6(58, IP6_A, IP6_B, &icmp(128, 16))),
        ),
        (
            "ipv6 udp :53",
            ip6(ipv6(17, IP6_A, IP6_B, &udp(5353, 53, 20))),
        ),
        ("arp request", ethernet(0x0806, None, &arp())),
        (
            "vlan 10 icmp",
            ethernet(0x0800, Some(10), &ipv4(1, IP_A, IP_B, 0, &icmp(8, 56))),
        ),
        (
            "vlan 20 tcp :443",
            ethernet(
                0x0800,
                Some(20),
                &ipv4(6, IP_A, IP_B, 0, &tcp(1, 443, 2, 0)),
            ),
        ),
        (
            "vlan 10 ipv6 tcp",
            ethernet(0x86dd, Some(10), &ipv6(6, IP6_A, IP6_B, &tcp(1, 443, 2, 0))),
        ),
    ];
    cases
        .into_iter()
        .map(|(name, (bytes, l3_at))| Packet {
            name: name.into(),
            bytes,
            l3_at,
        })
        .collect()
}

/// Every packet whole, and cut short: captured bytes fewer than the wire
/// length (as when the skb's linear data ends early), down to nothing.
pub fn captures(packets: &[Packet]) -> Vec<(String, Vec<u8>, usize, usize)> {
    let mut out = Vec::new();
    for p in packets {
        out.push((p.name.clone(), p.bytes.clone(), p.bytes.len(), p.l3_at));
        for cut in [0, 10, 14, 20, 30, 40, 60, 130] {
            if cut < p.bytes.len() {
                out.push((
                    format!("{} cut at {cut}", p.name),
                    p.bytes.clone(),
                    cut,
                    p.l3_at,
                ));
            }
        }
    }
    out
}
