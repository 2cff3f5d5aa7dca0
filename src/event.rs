//! The event the BPF programs emit (mirror of `struct ipft_event` in
//! src/bpf/ipft.h) and its decoding from the bytes the ring buffer hands over.

/// Bytes of extension data per event.
pub const DATA_LEN: usize = 64;

/// One raw event, laid out exactly as `struct ipft_event`.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Event {
    /// Address of the skb.
    pub packet_id: u64,
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
    use libbpf_rs::btf::types::Composite;
    use libbpf_rs::btf::Btf;
    use libbpf_rs::btf::HasSize;
    use std::mem::offset_of;

    /// The Rust mirror and the C struct agree on size and every offset:
    /// read the C layout from the BTF of the compiled BPF object.
    #[test]
    fn layout_matches_bpf_header() {
        let btf = Btf::from_raw("kprobe", crate::bpf::KPROBE_OBJ)
            .unwrap()
            .expect("BPF object has BTF");
        let st: Composite = btf.type_by_name("ipft_event").expect("struct ipft_event");
        assert_eq!(st.size(), Event::SIZE);
        let offsets: Vec<(String, u32)> = st
            .iter()
            .map(|m| {
                let name = m.name.unwrap().to_string_lossy().into_owned();
                let bits = match m.attr {
                    libbpf_rs::btf::types::MemberAttr::Normal { offset } => offset,
                    libbpf_rs::btf::types::MemberAttr::BitField { offset, .. } => offset,
                };
                (name, bits / 8)
            })
            .collect();
        let expected = [
            ("packet_id", offset_of!(Event, packet_id)),
            ("tstamp", offset_of!(Event, tstamp)),
            ("faddr", offset_of!(Event, faddr)),
            ("retval", offset_of!(Event, retval)),
            ("processor_id", offset_of!(Event, processor_id)),
            ("is_return", offset_of!(Event, is_return)),
            ("_pad", offset_of!(Event, _pad)),
            ("data", offset_of!(Event, data)),
        ];
        let expected: Vec<(String, u32)> = expected
            .iter()
            .map(|(n, o)| (n.to_string(), *o as u32))
            .collect();
        assert_eq!(offsets, expected);
    }

    #[test]
    fn decodes_bytes() {
        let mut bytes = vec![0u8; Event::SIZE];
        bytes[0..8].copy_from_slice(&0xffff888012345678u64.to_ne_bytes());
        bytes[32..36].copy_from_slice(&3u32.to_ne_bytes());
        bytes[36] = 1;
        let e = Event::from_bytes(&bytes).unwrap();
        assert_eq!(e.packet_id, 0xffff888012345678);
        assert_eq!(e.processor_id, 3);
        assert_eq!(e.is_return, 1);
        assert!(Event::from_bytes(&bytes[..10]).is_none());
    }
}
