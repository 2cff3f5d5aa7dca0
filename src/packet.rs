//! Packet metadata in words, for every output: the line naming a packet
//! (`ICMP 10.0.0.1 > 10.0.0.2 echo request id 7 seq 1, len 84`), what
//! changed between two events of one packet (namespace, device, addresses,
//! ports, length), and the JSON object of one event's metadata.
//!
//! Pure formatting of [`Meta`]; parts the kernel side did not read (not in
//! `known`) are left out, never shown as zero.

use crate::event::{
    Meta, META_DEV, META_ECHO, META_ICMP, META_IPV4, META_IPV6, META_NETNS, META_PORTS, META_TCP,
};
use serde_json::{json, Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const IPPROTO_ICMP: u8 = 1;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
const IPPROTO_ICMPV6: u8 = 58;

fn addr(m: &Meta, bytes: &[u8; 16]) -> Option<IpAddr> {
    if m.has(META_IPV4) {
        Some(IpAddr::V4(Ipv4Addr::new(
            bytes[0], bytes[1], bytes[2], bytes[3],
        )))
    } else if m.has(META_IPV6) {
        Some(IpAddr::V6(Ipv6Addr::from(*bytes)))
    } else {
        None
    }
}

/// Source and destination addresses, when an IP header was read.
pub fn addresses(m: &Meta) -> Option<(IpAddr, IpAddr)> {
    Some((addr(m, &m.saddr)?, addr(m, &m.daddr)?))
}

/// The L4 protocol's name.
pub fn l4_name(m: &Meta) -> String {
    match (m.l4_proto, m.has(META_IPV6)) {
        (IPPROTO_ICMP, false) => "ICMP".into(),
        (IPPROTO_ICMPV6, true) => "ICMPv6".into(),
        (IPPROTO_TCP, _) => "TCP".into(),
        (IPPROTO_UDP, _) => "UDP".into(),
        (132, _) => "SCTP".into(),
        (136, _) => "UDPLite".into(),
        (n, _) => format!("proto {n}"),
    }
}

/// `SYN,ACK`-style TCP flags.
pub fn tcp_flags(flags: u8) -> String {
    const NAMES: [&str; 8] = ["FIN", "SYN", "RST", "PSH", "ACK", "URG", "ECE", "CWR"];
    let set: Vec<&str> = (0..8)
        .filter(|b| flags & (1 << b) != 0)
        .map(|b| NAMES[b])
        .collect();
    if set.is_empty() {
        "none".into()
    } else {
        set.join(",")
    }
}

/// The ICMP or ICMPv6 message's name, or its type and code.
pub fn icmp_name(m: &Meta) -> String {
    let v6 = m.has(META_IPV6);
    let name = match (v6, m.icmp_type) {
        (false, 0) | (true, 129) => "echo reply",
        (false, 8) | (true, 128) => "echo request",
        (false, 3) | (true, 1) => "destination unreachable",
        (false, 11) | (true, 3) => "time exceeded",
        (true, 2) => "packet too big",
        (true, 135) => "neighbor solicitation",
        (true, 136) => "neighbor advertisement",
        (true, 133) => "router solicitation",
        (true, 134) => "router advertisement",
        _ => return format!("type {} code {}", m.icmp_type, m.icmp_code),
    };
    if m.icmp_code != 0 {
        format!("{name} code {}", m.icmp_code)
    } else {
        name.into()
    }
}

fn endpoint(a: IpAddr, port: Option<u16>) -> String {
    match (a, port) {
        (IpAddr::V6(a), Some(p)) => format!("[{a}]:{p}"),
        (a, Some(p)) => format!("{a}:{p}"),
        (a, None) => a.to_string(),
    }
}

/// The line naming a packet, or None when no IP header was read.
pub fn describe(m: &Meta) -> Option<String> {
    let (src, dst) = addresses(m)?;
    let ports = m.has(META_PORTS);
    let mut s = format!(
        "{} {} > {}",
        l4_name(m),
        endpoint(src, ports.then_some(m.sport)),
        endpoint(dst, ports.then_some(m.dport))
    );
    if m.has(META_ICMP) {
        s.push(' ');
        s.push_str(&icmp_name(m));
    }
    if m.has(META_ECHO) {
        s.push_str(&format!(" id {} seq {}", m.icmp_id, m.icmp_seq));
    }
    if m.has(META_TCP) {
        s.push_str(&format!(" [{}] seq {}", tcp_flags(m.tcp_flags), m.tcp_seq));
    }
    s.push_str(&format!(", len {}", m.ip_len));
    Some(s)
}

/// Where the packet is: `netns 4026531840 dev veth0`.
pub fn place(m: &Meta) -> String {
    let mut parts = Vec::new();
    if m.has(META_NETNS) {
        parts.push(format!("netns {}", m.netns));
    }
    if let Some(dev) = m.ifname() {
        parts.push(format!("dev {dev}"));
    }
    parts.join(" ")
}

/// What changed from `prev` to `cur`, as (what, "old > new") pairs: a new
/// namespace or device, rewritten addresses or ports (NAT), another IP
/// length (encapsulation). Parts unknown on either side are not compared.
pub fn changes(prev: &Meta, cur: &Meta) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    let mut cmp = |what, known: bool, a: String, b: String| {
        if known && a != b {
            out.push((what, format!("{a} > {b}")));
        }
    };
    let both = |bits| prev.has(bits) && cur.has(bits);
    cmp(
        "netns",
        both(META_NETNS),
        prev.netns.to_string(),
        cur.netns.to_string(),
    );
    cmp(
        "dev",
        both(META_DEV),
        prev.ifname().unwrap_or("").to_string(),
        cur.ifname().unwrap_or("").to_string(),
    );
    if let (Some((ps, pd)), Some((cs, cd))) = (addresses(prev), addresses(cur)) {
        cmp("saddr", true, ps.to_string(), cs.to_string());
        cmp("daddr", true, pd.to_string(), cd.to_string());
        let same_l4 = prev.l4_proto == cur.l4_proto;
        cmp(
            "sport",
            same_l4 && both(META_PORTS),
            prev.sport.to_string(),
            cur.sport.to_string(),
        );
        cmp(
            "dport",
            same_l4 && both(META_PORTS),
            prev.dport.to_string(),
            cur.dport.to_string(),
        );
        cmp("len", true, prev.ip_len.to_string(), cur.ip_len.to_string());
    }
    out
}

/// The event's metadata as a JSON object (see schema/ipft.schema.json);
/// unknown parts are absent.
pub fn to_json(m: &Meta) -> Value {
    let mut o = Map::new();
    if m.has(META_NETNS) {
        o.insert("netns".into(), json!(m.netns));
    }
    if let Some(dev) = m.ifname() {
        o.insert("ifindex".into(), json!(m.ifindex));
        o.insert("ifname".into(), json!(dev));
    }
    o.insert("mark".into(), json!(m.mark));
    o.insert("len".into(), json!(m.len));
    if m.protocol != 0 {
        o.insert(
            "protocol".into(),
            json!(format!("{:#06x}", u16::from_be(m.protocol))),
        );
    }
    if let Some((src, dst)) = addresses(m) {
        o.insert(
            "ip_version".into(),
            json!(if m.has(META_IPV4) { 4 } else { 6 }),
        );
        o.insert("saddr".into(), json!(src.to_string()));
        o.insert("daddr".into(), json!(dst.to_string()));
        o.insert("ip_len".into(), json!(m.ip_len));
        let id = if m.has(META_IPV4) {
            "ip_id"
        } else {
            "flow_label"
        };
        o.insert(id.into(), json!(m.ip_id));
        o.insert("l4_proto".into(), json!(l4_name(m)));
    }
    if m.has(META_PORTS) {
        o.insert("sport".into(), json!(m.sport));
        o.insert("dport".into(), json!(m.dport));
    }
    if m.has(META_TCP) {
        o.insert("tcp_flags".into(), json!(tcp_flags(m.tcp_flags)));
        o.insert("tcp_seq".into(), json!(m.tcp_seq));
    }
    if m.has(META_ICMP) {
        o.insert("icmp_type".into(), json!(m.icmp_type));
        o.insert("icmp_code".into(), json!(m.icmp_code));
    }
    if m.has(META_ECHO) {
        o.insert("icmp_id".into(), json!(m.icmp_id));
        o.insert("icmp_seq".into(), json!(m.icmp_seq));
    }
    Value::Object(o)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ping(seq: u16) -> Meta {
        let mut m = Meta {
            known: META_NETNS | META_DEV | META_IPV4 | META_ICMP | META_ECHO,
            netns: 4026531840,
            ifindex: 2,
            len: 98,
            ip_len: 84,
            l4_proto: IPPROTO_ICMP,
            icmp_type: 8,
            icmp_id: 7,
            icmp_seq: seq,
            ..Meta::default()
        };
        m.ifname[..2].copy_from_slice(b"va");
        m.saddr[..4].copy_from_slice(&[10, 0, 0, 1]);
        m.daddr[..4].copy_from_slice(&[10, 0, 0, 2]);
        m
    }

    #[test]
    fn names_an_icmp_echo() {
        assert_eq!(
            describe(&ping(1)).unwrap(),
            "ICMP 10.0.0.1 > 10.0.0.2 echo request id 7 seq 1, len 84"
        );
        assert_eq!(place(&ping(1)), "netns 4026531840 dev va");
    }

    #[test]
    fn names_tcp_and_ipv6() {
        let mut m = Meta {
            known: META_IPV6 | META_PORTS | META_TCP,
            l4_proto: IPPROTO_TCP,
            sport: 40000,
            dport: 80,
            tcp_flags: 0x02,
            tcp_seq: 1234,
            ip_len: 80,
            ..Meta::default()
        };
        m.saddr = "fd00::1".parse::<Ipv6Addr>().unwrap().octets();
        m.daddr = "fd00::2".parse::<Ipv6Addr>().unwrap().octets();
        assert_eq!(
            describe(&m).unwrap(),
            "TCP [fd00::1]:40000 > [fd00::2]:80 [SYN] seq 1234, len 80"
        );
        m.known = 0;
        assert_eq!(describe(&m), None);
    }

    #[test]
    fn marks_what_changed_and_only_that() {
        let a = ping(1);
        assert!(changes(&a, &a).is_empty());
        let mut b = ping(1);
        b.netns = 4026532300;
        b.ifname = [0; 16];
        b.ifname[..2].copy_from_slice(b"vb");
        b.daddr[3] = 99;
        assert_eq!(
            changes(&a, &b),
            [
                ("netns", "4026531840 > 4026532300".to_string()),
                ("dev", "va > vb".to_string()),
                ("daddr", "10.0.0.2 > 10.0.0.99".to_string()),
            ]
        );
        // Unknown on one side: not a change.
        b.known = META_NETNS;
        assert_eq!(changes(&a, &b).len(), 1);
    }

    #[test]
    fn json_leaves_unknown_parts_out() {
        let v = to_json(&ping(3));
        assert_eq!(v["saddr"], "10.0.0.1");
        assert_eq!(v["icmp_seq"], 3);
        assert_eq!(v["ifname"], "va");
        assert!(v.get("sport").is_none());
        let bare = to_json(&Meta::default());
        assert!(bare.get("netns").is_none() && bare.get("saddr").is_none());
    }
}
