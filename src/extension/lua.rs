//! Lua extensions (`-e x.lua`, `-s x.lua`), embedded Lua 5.4. The script
//! sets `api_version = 1`, `program` (the bytes of a BPF module object),
//! optional `init()` and `fini()`, and `decode(data)`, which gets the 64
//! bytes of each event and returns a table of key to string or number,
//! printed in sorted key order.

use anyhow::{bail, Context, Result};
use mlua::{Function, Lua, Table, Value};
use std::path::Path;

pub struct LuaExtension {
    lua: Lua,
    path: String,
}

/// Lua errors carry the chunk name and line; keep them on one line.
fn lua_error(path: &str, what: &str, e: mlua::Error) -> anyhow::Error {
    let text = e.to_string();
    let first = text.lines().next().unwrap_or("error").to_string();
    anyhow::anyhow!("Lua extension {path}: {what}: {first}")
}

impl LuaExtension {
    /// Runs the script and returns it with its `program` bytes.
    pub fn load(path: &Path) -> Result<(LuaExtension, Vec<u8>)> {
        let source = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read Lua extension {}", path.display()))?;
        let name = path.display().to_string();
        let lua = Lua::new();
        lua.load(&source)
            .set_name(format!("@{name}"))
            .exec()
            .map_err(|e| lua_error(&name, "script failed", e))?;
        let globals = lua.globals();
        let version: Option<i64> = globals.get("api_version").ok();
        if version != Some(1) {
            bail!("Lua extension {name}: set `api_version = 1` (found {version:?})");
        }
        let program: mlua::String = globals.get("program").map_err(|_| {
            anyhow::anyhow!(
                "Lua extension {name}: set `program` to the bytes of a BPF module object"
            )
        })?;
        if globals.get::<Function>("decode").is_err() {
            bail!("Lua extension {name}: define `decode(data)` returning a table");
        }
        let program = program.as_bytes().to_vec();
        let ext = LuaExtension { lua, path: name };
        ext.call_optional("init")?;
        Ok((ext, program))
    }

    fn call_optional(&self, func: &str) -> Result<()> {
        if let Ok(f) = self.lua.globals().get::<Function>(func) {
            f.call::<()>(())
                .map_err(|e| lua_error(&self.path, &format!("{func}() failed"), e))?;
        }
        Ok(())
    }

    /// The script's fields for one event's data, sorted by key.
    pub fn decode(&self, data: &[u8]) -> Result<Vec<(String, String)>> {
        let decode: Function = self
            .lua
            .globals()
            .get("decode")
            .map_err(|e| lua_error(&self.path, "decode", e))?;
        let arg = self
            .lua
            .create_string(data)
            .map_err(|e| lua_error(&self.path, "decode", e))?;
        let table: Table = decode
            .call(arg)
            .map_err(|e| lua_error(&self.path, "decode() failed", e))?;
        let mut fields = Vec::new();
        for pair in table.pairs::<Value, Value>() {
            let (k, v) = pair.map_err(|e| lua_error(&self.path, "decode() result", e))?;
            fields.push((show(&k), show(&v)));
        }
        fields.sort();
        Ok(fields)
    }

    pub fn fini(&self) -> Result<()> {
        self.call_optional("fini")
    }
}

fn show(v: &Value) -> String {
    match v {
        Value::String(s) => s.to_string_lossy().to_string(),
        Value::Integer(i) => i.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Boolean(b) => b.to_string(),
        Value::Nil => "nil".into(),
        other => format!("{other:?}"),
    }
}
