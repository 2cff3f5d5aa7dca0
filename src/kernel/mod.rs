//! Facts read from the running kernel: BTF function prototypes, kallsyms,
//! tracefs's list of traceable functions. Each reader also parses the same
//! text or bytes from a fixture, so discovery is testable without a kernel.

pub mod btf;
pub mod kallsyms;
pub mod rcu;
pub mod tracefs;

/// Name of the core kernel in module columns, as ipftrace2 prints it.
pub const VMLINUX: &str = "vmlinux";
