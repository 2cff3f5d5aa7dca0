//! The records the BPF programs emit (mirror of src/bpf/ipft.h: a 40-byte
//! header and optional sections) and their decoding from the bytes the
//! event buffer hands over into one [`Event`].

/// Bytes of extension data per event.
pub const DATA_LEN: usize = 64;
/// Most packet bytes one event can carry (IPFT_SNAPLEN_MAX).
pub const SNAPLEN_MAX: usize = 256;

/// Section bits of `ipft_event.sections`, in the order sections follow.
pub const SEC_VALUE: u8 = 1 << 0;
pub const SEC_META: u8 = 1 << 1;
pub const SEC_DATA: u8 = 1 << 2;
pub const SEC_PACKET: u8 = 1 << 3;
pub const SEC_STACK: u8 = 1 << 4;

/// Bits of `ipft_event.flags`.
pub const EV_RETURN: u8 = 1 << 0;
pub const EV_END: u8 = 1 << 1;

/// Bits of `Meta::known`: which parts of the metadata were read.
pub const META_DEV: u16 = 1 << 0;
pub const META_IPV4: u16 = 1 << 1;
pub const META_IPV6: u16 = 1 << 2;
pub const META_PORTS: u16 = 1 << 3;
pub const META_TCP: u16 = 1 << 4;
pub const META_ICMP: u16 = 1 << 5;
pub const META_ECHO: u16 = 1 << 6;
pub const META_NETNS: u16 = 1 << 7;

/// `struct ipft_event`: the header every record starts with.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default)]
struct RawHeader {
    packet_id: u64,
    skb: u64,
    tstamp: u64,
    faddr: u64,
    processor_id: u32,
    size: u16,
    flags: u8,
    sections: u8,
}

/// `struct ipft_meta`: who and where the packet is at this event. Parts not
/// named in `known` are zero and mean nothing.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Meta {
    pub netns: u32,
    pub ifindex: u32,
    pub mark: u32,
    /// skb->len.
    pub len: u32,
    pub ifname: [u8; 16],
    pub known: u16,
    /// skb->protocol, network byte order as the kernel keeps it.
    pub protocol: u16,
    /// Bytes from the network header to the packet's end (the IP length
    /// of a whole packet).
    pub ip_len: u16,
    pub l4_proto: u8,
    pub tcp_flags: u8,
    /// IPv4 id or IPv6 flow label.
    pub ip_id: u32,
    pub saddr: [u8; 16],
    pub daddr: [u8; 16],
    pub sport: u16,
    pub dport: u16,
    pub tcp_seq: u32,
    pub icmp_type: u8,
    pub icmp_code: u8,
    pub icmp_id: u16,
    pub icmp_seq: u16,
    pub _pad: [u8; 6],
}

impl Meta {
    pub fn has(&self, bits: u16) -> bool {
        self.known & bits == bits
    }

    /// The device's name, when known.
    pub fn ifname(&self) -> Option<&str> {
        if !self.has(META_DEV) {
            return None;
        }
        let end = self.ifname.iter().position(|&b| b == 0).unwrap_or(16);
        std::str::from_utf8(&self.ifname[..end]).ok()
    }
}

/// Link type of captured bytes (`struct ipft_packet.link`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Link {
    Ethernet,
    RawIp,
}

/// Packet bytes captured at an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Captured {
    pub link: Link,
    /// Bytes from the capture start to the packet's end.
    pub orig_len: u32,
    pub bytes: Vec<u8>,
}

/// The kernel stack captured at an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stack {
    /// Return addresses, innermost first, and the address the event's
    /// function was reported at (where the stack was taken).
    Frames { at: u64, ips: Vec<u64> },
    /// bpf_get_stack failed with this error.
    Lost(i32),
}

/// One decoded event.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
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
    /// 1 for a return (function_graph).
    pub is_return: u8,
    /// Tracking forgot the packet here: the last of its memory went.
    pub ended: bool,
    /// Drop reason (enum skb_drop_reason) of a drop function or tracepoint.
    pub reason: Option<u64>,
    pub meta: Option<Box<Meta>>,
    /// Extension data.
    pub data: Option<Box<[u8; DATA_LEN]>>,
    pub packet: Option<Box<Captured>>,
    pub stack: Option<Box<Stack>>,
}

fn read<T: Copy>(bytes: &[u8], off: usize) -> Option<T> {
    let end = off.checked_add(std::mem::size_of::<T>())?;
    if end > bytes.len() {
        return None;
    }
    // SAFETY: bounds checked; T is plain old data (integers and byte arrays).
    Some(unsafe { std::ptr::read_unaligned(bytes[off..].as_ptr().cast::<T>()) })
}

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

impl Event {
    /// Bytes of the header alone: the smallest record.
    pub const HEADER_SIZE: usize = std::mem::size_of::<RawHeader>();

    /// Decodes one record; None when it is malformed (shorter than its
    /// header or its sections say).
    pub fn from_bytes(bytes: &[u8]) -> Option<Event> {
        let h: RawHeader = read(bytes, 0)?;
        let bytes = bytes.get(..h.size as usize)?;
        let is_return = h.flags & EV_RETURN != 0;
        let mut e = Event {
            packet_id: h.packet_id,
            skb: h.skb,
            tstamp: h.tstamp,
            faddr: h.faddr,
            processor_id: h.processor_id,
            is_return: is_return as u8,
            ended: h.flags & EV_END != 0,
            ..Event::default()
        };
        let mut off = Self::HEADER_SIZE;
        if h.sections & SEC_VALUE != 0 {
            let v: u64 = read(bytes, off)?;
            if is_return {
                e.retval = v;
            } else {
                e.reason = Some(v);
            }
            off += 8;
        }
        if h.sections & SEC_META != 0 {
            e.meta = Some(Box::new(read(bytes, off)?));
            off += std::mem::size_of::<Meta>();
        }
        if h.sections & SEC_DATA != 0 {
            e.data = Some(Box::new(read(bytes, off)?));
            off += DATA_LEN;
        }
        if h.sections & SEC_PACKET != 0 {
            let (len, link, orig_len): (u16, u8, u32) = (
                read(bytes, off)?,
                read(bytes, off + 2)?,
                read(bytes, off + 4)?,
            );
            off += 8;
            let data = bytes.get(off..off + len as usize)?;
            let link = match link {
                1 => Some(Link::Ethernet),
                2 => Some(Link::RawIp),
                _ => None,
            };
            if let Some(link) = link {
                e.packet = Some(Box::new(Captured {
                    link,
                    orig_len,
                    bytes: data.to_vec(),
                }));
            }
            off += align8(len as usize);
        }
        if h.sections & SEC_STACK != 0 {
            let (len, error): (u32, i32) = (read(bytes, off)?, read(bytes, off + 4)?);
            off += 8;
            let frames = bytes.get(off..off + len as usize)?;
            e.stack = Some(Box::new(if len == 0 {
                Stack::Lost(error)
            } else {
                Stack::Frames {
                    at: e.faddr,
                    ips: frames
                        .chunks_exact(8)
                        .map(|c| u64::from_ne_bytes(c.try_into().unwrap()))
                        .filter(|&ip| ip != 0)
                        .collect(),
                }
            }));
        }
        Some(e)
    }
}

#[cfg(test)]
#[path = "event_tests.rs"]
mod tests;
