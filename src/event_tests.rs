use super::*;
use std::mem::offset_of;

/// (member name, byte offset) of the C struct `name` in the BTF of the
/// compiled BPF object, and its size.
fn c_layout(name: &str) -> (usize, Vec<(String, usize)>) {
    use btf_rs::Type;
    let btf = crate::extension::layout::object_btf(crate::bpf::KPROBE_OBJ).unwrap();
    let st = btf
        .resolve_types_by_name(name)
        .unwrap()
        .into_iter()
        .find_map(|t| match t {
            Type::Struct(s) => Some(s),
            _ => None,
        })
        .unwrap_or_else(|| panic!("struct {name} in the object's BTF"));
    let members = st
        .members
        .iter()
        .map(|m| (btf.resolve_name(m).unwrap(), m.bit_offset() as usize / 8))
        .collect();
    (st.size(), members)
}

fn owned(expected: &[(&str, usize)]) -> Vec<(String, usize)> {
    expected.iter().map(|(n, o)| (n.to_string(), *o)).collect()
}

/// The Rust mirrors and the C structs agree on size and every offset.
#[test]
fn header_layout_matches_bpf_header() {
    let (size, members) = c_layout("ipft_event");
    assert_eq!(size, Event::HEADER_SIZE);
    assert_eq!(size, 40, "the smallest record is at most 40 bytes");
    let expected = [
        ("packet_id", offset_of!(RawHeader, packet_id)),
        ("skb", offset_of!(RawHeader, skb)),
        ("tstamp", offset_of!(RawHeader, tstamp)),
        ("faddr", offset_of!(RawHeader, faddr)),
        ("processor_id", offset_of!(RawHeader, processor_id)),
        ("size", offset_of!(RawHeader, size)),
        ("flags", offset_of!(RawHeader, flags)),
        ("sections", offset_of!(RawHeader, sections)),
    ];
    assert_eq!(members, owned(&expected));
}

#[test]
fn meta_layout_matches_bpf_header() {
    let (size, members) = c_layout("ipft_meta");
    assert_eq!(size, std::mem::size_of::<Meta>());
    assert_eq!(size % 8, 0, "sections stay 8-byte aligned");
    let expected = [
        ("netns", offset_of!(Meta, netns)),
        ("ifindex", offset_of!(Meta, ifindex)),
        ("mark", offset_of!(Meta, mark)),
        ("len", offset_of!(Meta, len)),
        ("ifname", offset_of!(Meta, ifname)),
        ("known", offset_of!(Meta, known)),
        ("protocol", offset_of!(Meta, protocol)),
        ("ip_len", offset_of!(Meta, ip_len)),
        ("l4_proto", offset_of!(Meta, l4_proto)),
        ("tcp_flags", offset_of!(Meta, tcp_flags)),
        ("ip_id", offset_of!(Meta, ip_id)),
        ("saddr", offset_of!(Meta, saddr)),
        ("daddr", offset_of!(Meta, daddr)),
        ("sport", offset_of!(Meta, sport)),
        ("dport", offset_of!(Meta, dport)),
        ("tcp_seq", offset_of!(Meta, tcp_seq)),
        ("icmp_type", offset_of!(Meta, icmp_type)),
        ("icmp_code", offset_of!(Meta, icmp_code)),
        ("icmp_id", offset_of!(Meta, icmp_id)),
        ("icmp_seq", offset_of!(Meta, icmp_seq)),
        ("_pad", offset_of!(Meta, _pad)),
    ];
    assert_eq!(members, owned(&expected));
}

#[test]
fn section_headers_match_bpf_header() {
    let (size, members) = c_layout("ipft_packet");
    assert_eq!(size, 8);
    assert_eq!(
        members,
        owned(&[("len", 0), ("link", 2), ("_pad", 3), ("orig_len", 4)])
    );
    let (size, members) = c_layout("ipft_stack");
    assert_eq!(size, 8);
    assert_eq!(members, owned(&[("len", 0), ("error", 4)]));
}

fn header(size: u16, flags: u8, sections: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(7u64.to_ne_bytes());
    b.extend(0xffff888012345678u64.to_ne_bytes());
    b.extend(1000u64.to_ne_bytes());
    b.extend(0xffffffff81000000u64.to_ne_bytes());
    b.extend(3u32.to_ne_bytes());
    b.extend(size.to_ne_bytes());
    b.push(flags);
    b.push(sections);
    b
}

#[test]
fn decodes_a_bare_header() {
    let bytes = header(40, 0, 0);
    let e = Event::from_bytes(&bytes).unwrap();
    assert_eq!(e.packet_id, 7);
    assert_eq!(e.skb, 0xffff888012345678);
    assert_eq!(e.processor_id, 3);
    assert_eq!(e.is_return, 0);
    assert!(e.meta.is_none() && e.reason.is_none() && e.stack.is_none());
    assert!(Event::from_bytes(&bytes[..10]).is_none());
}

#[test]
fn decodes_sections_in_order() {
    let meta_size = std::mem::size_of::<Meta>();
    let size = 40 + 8 + meta_size + 8 + 16 + 8 + 16;
    let mut b = header(
        size as u16,
        EV_END,
        SEC_VALUE | SEC_META | SEC_PACKET | SEC_STACK,
    );
    b.extend(6u64.to_ne_bytes()); // drop reason
    let mut meta = vec![0u8; meta_size];
    meta[offset_of!(Meta, ifindex)] = 2;
    b.extend(meta);
    b.extend(10u16.to_ne_bytes()); // packet: 10 bytes, Ethernet, 98 long
    b.push(1);
    b.push(0);
    b.extend(98u32.to_ne_bytes());
    b.extend([0xaa; 10]);
    b.extend([0; 6]);
    b.extend(16u32.to_ne_bytes()); // stack: two frames
    b.extend(0i32.to_ne_bytes());
    b.extend(0xffffffff81000010u64.to_ne_bytes());
    b.extend(0xffffffff81000020u64.to_ne_bytes());
    let e = Event::from_bytes(&b).unwrap();
    assert!(e.ended);
    assert_eq!(e.reason, Some(6));
    assert_eq!(e.meta.unwrap().ifindex, 2);
    let p = e.packet.unwrap();
    assert_eq!(
        (p.link, p.orig_len, p.bytes.len()),
        (Link::Ethernet, 98, 10)
    );
    assert_eq!(
        *e.stack.unwrap(),
        Stack::Frames {
            at: 0xffffffff81000000,
            ips: vec![0xffffffff81000010, 0xffffffff81000020]
        }
    );
    // A record shorter than its sections say is refused, not misread.
    let mut short = b.clone();
    short.truncate(size - 8);
    assert!(Event::from_bytes(&short).is_none());
}

#[test]
fn a_return_carries_its_value() {
    let mut b = header(48, EV_RETURN, SEC_VALUE);
    b.extend(u64::MAX.to_ne_bytes());
    let e = Event::from_bytes(&b).unwrap();
    assert_eq!((e.is_return, e.retval, e.reason), (1, u64::MAX, None));
}
