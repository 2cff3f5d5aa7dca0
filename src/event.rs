//! The event the BPF programs emit (mirror of `struct ipft_event` in
//! src/bpf/ipft.h) and its decoding from the bytes the ring buffer hands over.

/// Bytes of extension data per event.
pub const DATA_LEN: usize = 64;

/// One raw event, laid out exactly as `struct ipft_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// The packet's id: unique in a run while tracking, else (--no-track)
    /// the skb's address.
    pub packet_id: u64,
    /// Address of the skb.
    pub skb: u64,
    /// bpf_ktime_get_ns() at the probe.
    pub tstamp: u64,
    /// Address of the traced function as the kernel reported it.
    pub faddr: u64,
    /// Return value (returns of the graph tracer only).
    pub retval: u64,
    pub processor_id: u32,
    pub is_return: u8,
    pub _pad: [u8; 3],
    pub data: [u8; DATA_LEN],
}

impl Event {
    pub const SIZE: usize = std::mem::size_of::<Event>();

    /// Decodes one record; None when it is too short to be an event.
    pub fn from_bytes(bytes: &[u8]) -> Option<Event> {
        if bytes.len() < Self::SIZE {
            return None;
        }
        // SAFETY: length checked; Event is plain old data with no invalid bit patterns.
        Some(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<Event>()) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::mem::offset_of;

    /// The Rust mirror and the C struct agree on size and every offset:
    /// read the C layout from the BTF of the compiled BPF object.
    #[test]
    fn layout_matches_bpf_header() {
        use btf_rs::Type;
        let btf = crate::extension::layout::object_btf(crate::bpf::KPROBE_OBJ).unwrap();
        let st = btf
            .resolve_types_by_name("ipft_event")
            .unwrap()
            .into_iter()
            .find_map(|t| match t {
                Type::Struct(s) => Some(s),
                _ => None,
            })
            .expect("struct ipft_event in the object's BTF");
        assert_eq!(st.size(), Event::SIZE);
        let offsets: Vec<(String, usize)> = st
            .members
            .iter()
            .map(|m| (btf.resolve_name(m).unwrap(), m.bit_offset() as usize / 8))
            .collect();
        let expected = [
            ("packet_id", offset_of!(Event, packet_id)),
            ("skb", offset_of!(Event, skb)),
            ("tstamp", offset_of!(Event, tstamp)),
            ("faddr", offset_of!(Event, faddr)),
            ("retval", offset_of!(Event, retval)),
            ("processor_id", offset_of!(Event, processor_id)),
            ("is_return", offset_of!(Event, is_return)),
            ("_pad", offset_of!(Event, _pad)),
            ("data", offset_of!(Event, data)),
        ];
        let expected: Vec<(String, usize)> =
            expected.iter().map(|(n, o)| (n.to_string(), *o)).collect();
        assert_eq!(offsets, expected);
    }

    #[test]
    fn decodes_bytes() {
        let mut bytes = vec![0u8; Event::SIZE];
        bytes[0..8].copy_from_slice(&7u64.to_ne_bytes());
        bytes[8..16].copy_from_slice(&0xffff888012345678u64.to_ne_bytes());
        bytes[40..44].copy_from_slice(&3u32.to_ne_bytes());
        bytes[44] = 1;
        let e = Event::from_bytes(&bytes).unwrap();
        assert_eq!(e.skb, 0xffff888012345678);
        assert_eq!(e.packet_id, 7);
        assert_eq!(e.processor_id, 3);
        assert_eq!(e.is_return, 1);
        assert!(Event::from_bytes(&bytes[..10]).is_none());
    }
}
