//! libpcap's filter compiler (pcap-filter expressions to classic BPF),
//! loaded at run time with libloading, never linked: ipft must start on
//! machines without libpcap when no expression is given, and Debian's
//! libpcap.a cannot be linked statically (it wants libdbus and more). Only
//! this module touches libpcap.

use super::cbpf::CbpfInsn;
use libloading::Library;
use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::sync::{Mutex, OnceLock};

/// Ethernet frames, from the destination MAC address.
pub const DLT_EN10MB: c_int = 1;
/// Raw IP, IPv4 or IPv6 told apart by the version nibble (Linux's value of
/// DLT_RAW; libpcap maps it to LINKTYPE_RAW). Checked with libpcap 1.10.3:
/// `ip` and `ip6` compile to tests of the first byte's high nibble.
pub const DLT_RAW: c_int = 12;
/// tcpdump's default snapshot length: what `RET #snaplen` returns on match.
const SNAPLEN: c_int = 262_144;
const PCAP_NETMASK_UNKNOWN: u32 = 0xffff_ffff;
/// Debian's runtime package, then other distributions', then a -dev link.
const LIBRARY_NAMES: [&str; 3] = ["libpcap.so.0.8", "libpcap.so.1", "libpcap.so"];

/// `struct bpf_program`.
#[repr(C)]
struct BpfProgram {
    bf_len: c_uint,
    bf_insns: *mut CbpfInsn,
}

/// `struct pcap_pkthdr`.
#[repr(C)]
struct PacketHeader {
    ts: libc::timeval,
    caplen: u32,
    len: u32,
}

type OpenDead = unsafe extern "C" fn(c_int, c_int) -> *mut c_void;
type Compile =
    unsafe extern "C" fn(*mut c_void, *mut BpfProgram, *const c_char, c_int, u32) -> c_int;
type GetErr = unsafe extern "C" fn(*mut c_void) -> *mut c_char;
type FreeCode = unsafe extern "C" fn(*mut BpfProgram);
type Close = unsafe extern "C" fn(*mut c_void);
type OfflineFilter =
    unsafe extern "C" fn(*const BpfProgram, *const PacketHeader, *const u8) -> c_int;

/// The loaded library and the functions ipft uses.
pub struct Libpcap {
    open_dead: OpenDead,
    compile: Compile,
    geterr: GetErr,
    freecode: FreeCode,
    close: Close,
    /// For the tests, which compare translations with libpcap's matcher.
    #[cfg_attr(not(test), allow(dead_code))]
    offline_filter: OfflineFilter,
    /// pcap_compile kept global parser state before libpcap 1.8.
    compile_lock: Mutex<()>,
    /// Keeps the function pointers above valid.
    _library: Library,
}

/// libpcap could not be loaded; says what was tried.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct LibpcapMissing(String);

impl Libpcap {
    /// The process-wide libpcap, loaded on first use.
    pub fn get() -> Result<&'static Libpcap, LibpcapMissing> {
        static LIBPCAP: OnceLock<Result<Libpcap, LibpcapMissing>> = OnceLock::new();
        LIBPCAP
            .get_or_init(|| load_first(&LIBRARY_NAMES))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// Compiles `expression` for `linktype` with the optimizer on; on
    /// failure, libpcap's own message.
    pub fn compile(&self, expression: &str, linktype: c_int) -> Result<Vec<CbpfInsn>, String> {
        let expression = CString::new(expression)
            .map_err(|_| "the expression contains a NUL byte".to_string())?;
        let _guard = self.compile_lock.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: libpcap's documented calling sequence on a dead handle;
        // the program is copied out before pcap_freecode.
        unsafe {
            let handle = (self.open_dead)(linktype, SNAPLEN);
            if handle.is_null() {
                return Err(format!("libpcap cannot open link type {linktype}"));
            }
            let mut program = BpfProgram {
                bf_len: 0,
                bf_insns: std::ptr::null_mut(),
            };
            let rc = (self.compile)(
                handle,
                &mut program,
                expression.as_ptr(),
                1,
                PCAP_NETMASK_UNKNOWN,
            );
            let result = if rc != 0 {
                Err(CStr::from_ptr((self.geterr)(handle))
                    .to_string_lossy()
                    .into_owned())
            } else {
                let insns = if program.bf_insns.is_null() {
                    Vec::new()
                } else {
                    std::slice::from_raw_parts(program.bf_insns, program.bf_len as usize).to_vec()
                };
                (self.freecode)(&mut program);
                Ok(insns)
            };
            (self.close)(handle);
            result
        }
    }

    /// libpcap's own matcher (pcap_offline_filter) on `packet`, the captured
    /// bytes of a packet `wirelen` long: what the program returns (0: no match).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn offline_filter(&self, program: &[CbpfInsn], packet: &[u8], wirelen: u32) -> u32 {
        let program = BpfProgram {
            bf_len: program.len() as c_uint,
            bf_insns: program.as_ptr().cast_mut(),
        };
        let header = PacketHeader {
            ts: libc::timeval {
                tv_sec: 0,
                tv_usec: 0,
            },
            caplen: packet.len() as u32,
            len: wirelen,
        };
        // SAFETY: valid program (libpcap only reads it), header and bytes.
        unsafe { (self.offline_filter)(&program, &header, packet.as_ptr()) as u32 }
    }
}

/// The first of `names` that loads and has every function.
pub(super) fn load_first(names: &[&str]) -> Result<Libpcap, LibpcapMissing> {
    let mut tried = Vec::new();
    for &name in names {
        // SAFETY: libpcap's initialisers have no preconditions.
        match unsafe { Library::new(name) } {
            Ok(library) => {
                return functions(library).map_err(|e| LibpcapMissing(format!("{name}: {e}")));
            }
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(LibpcapMissing(tried.join("; ")))
}

fn functions(library: Library) -> Result<Libpcap, libloading::Error> {
    // SAFETY: the types are libpcap's documented prototypes; the pointers
    // stay valid because the Library is kept with them.
    unsafe {
        Ok(Libpcap {
            open_dead: *library.get::<OpenDead>(b"pcap_open_dead\0")?,
            compile: *library.get::<Compile>(b"pcap_compile\0")?,
            geterr: *library.get::<GetErr>(b"pcap_geterr\0")?,
            freecode: *library.get::<FreeCode>(b"pcap_freecode\0")?,
            close: *library.get::<Close>(b"pcap_close\0")?,
            offline_filter: *library.get::<OfflineFilter>(b"pcap_offline_filter\0")?,
            compile_lock: Mutex::new(()),
            _library: library,
        })
    }
}
