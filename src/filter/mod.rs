//! TEMPORARY interface of the filter branch (replaced when it is merged).
pub mod splice;

#[derive(Debug)]
#[allow(dead_code)]
pub struct PacketFilter {
    pub expression: String,
    pub l2: Vec<libbpf_sys::bpf_insn>,
    pub l3: Vec<libbpf_sys::bpf_insn>,
    pub l3_note: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum FilterError {
    #[error("filter expressions are not built yet: '{0}'")]
    NotBuilt(String),
}

pub fn compile(expression: &str) -> Result<PacketFilter, FilterError> {
    Err(FilterError::NotBuilt(expression.into()))
}
