//! Just enough BTF to compare layouts: the type a map was created with (its
//! kernel BTF) against the type this build's object declares for it.
//!
//! A type's [`signature`] spells its whole layout — names, sizes, member
//! names, offsets and member types, recursively — so two builds whose map
//! types differ in any way that would change decoding have different
//! signatures, while rebuilding the same types gives the same one.

use std::fmt::Write as _;

const BTF_MAGIC: u16 = 0xeb9f;

const KIND_INT: u32 = 1;
const KIND_PTR: u32 = 2;
const KIND_ARRAY: u32 = 3;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
const KIND_ENUM: u32 = 6;
const KIND_FWD: u32 = 7;
const KIND_TYPEDEF: u32 = 8;
const KIND_VOLATILE: u32 = 9;
const KIND_CONST: u32 = 10;
const KIND_RESTRICT: u32 = 11;
const KIND_FUNC: u32 = 12;
const KIND_FUNC_PROTO: u32 = 13;
const KIND_VAR: u32 = 14;
const KIND_DATASEC: u32 = 15;
const KIND_FLOAT: u32 = 16;
const KIND_DECL_TAG: u32 = 17;
const KIND_TYPE_TAG: u32 = 18;
const KIND_ENUM64: u32 = 19;

#[derive(Clone, Debug)]
struct Type {
    name_off: u32,
    kind: u32,
    vlen: u32,
    kflag: bool,
    /// Size (INT, STRUCT, UNION, ENUM, DATASEC, FLOAT) or referenced type.
    size_or_type: u32,
    /// The bytes after the common header.
    extra: Vec<u8>,
}

/// A parsed BTF blob (type ids start at 1).
#[derive(Debug)]
pub struct Btf {
    types: Vec<Type>,
    strings: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
#[error("malformed BTF: {0}")]
pub struct BtfError(String);

fn u32_at(b: &[u8], off: usize) -> Result<u32, BtfError> {
    b.get(off..off + 4)
        .map(|s| u32::from_le_bytes(s.try_into().unwrap()))
        .ok_or_else(|| BtfError(format!("truncated at byte {off}")))
}

impl Btf {
    /// Parses a little-endian BTF blob (what the kernel returns, and the
    /// `.BTF` section of the object).
    pub fn parse(b: &[u8]) -> Result<Self, BtfError> {
        let magic = b
            .get(0..2)
            .map(|s| u16::from_le_bytes([s[0], s[1]]))
            .ok_or_else(|| BtfError("empty".into()))?;
        if magic != BTF_MAGIC {
            return Err(BtfError(format!("bad magic {magic:#x}")));
        }
        let hdr_len = u32_at(b, 4)? as usize;
        let type_off = u32_at(b, 8)? as usize;
        let type_len = u32_at(b, 12)? as usize;
        let str_off = u32_at(b, 16)? as usize;
        let str_len = u32_at(b, 20)? as usize;
        let types_bytes = b
            .get(hdr_len + type_off..hdr_len + type_off + type_len)
            .ok_or_else(|| BtfError("type section out of bounds".into()))?;
        let strings = b
            .get(hdr_len + str_off..hdr_len + str_off + str_len)
            .ok_or_else(|| BtfError("string section out of bounds".into()))?
            .to_vec();
        let mut types = Vec::new();
        let mut off = 0;
        while off < types_bytes.len() {
            let name_off = u32_at(types_bytes, off)?;
            let info = u32_at(types_bytes, off + 4)?;
            let size_or_type = u32_at(types_bytes, off + 8)?;
            let kind = (info >> 24) & 0x1f;
            let vlen = info & 0xffff;
            let extra_len = match kind {
                KIND_INT | KIND_VAR | KIND_DECL_TAG => 4,
                KIND_ARRAY => 12,
                KIND_STRUCT | KIND_UNION | KIND_DATASEC | KIND_ENUM64 => 12 * vlen as usize,
                KIND_ENUM | KIND_FUNC_PROTO => 8 * vlen as usize,
                KIND_PTR | KIND_FWD | KIND_TYPEDEF | KIND_VOLATILE | KIND_CONST | KIND_RESTRICT
                | KIND_FUNC | KIND_FLOAT | KIND_TYPE_TAG => 0,
                k => return Err(BtfError(format!("unknown kind {k}"))),
            };
            let start = off + 12;
            let extra = types_bytes
                .get(start..start + extra_len)
                .ok_or_else(|| BtfError("truncated type".into()))?
                .to_vec();
            types.push(Type {
                name_off,
                kind,
                vlen,
                kflag: info >> 31 != 0,
                size_or_type,
                extra,
            });
            off = start + extra_len;
        }
        Ok(Self { types, strings })
    }

    /// The `.BTF` section of an ELF64 little-endian object.
    pub fn from_elf(elf: &[u8]) -> Result<Self, BtfError> {
        let u16_at = |off: usize| -> Result<u16, BtfError> {
            elf.get(off..off + 2)
                .map(|s| u16::from_le_bytes([s[0], s[1]]))
                .ok_or_else(|| BtfError("truncated ELF".into()))
        };
        let u64_at = |off: usize| -> Result<u64, BtfError> {
            elf.get(off..off + 8)
                .map(|s| u64::from_le_bytes(s.try_into().unwrap()))
                .ok_or_else(|| BtfError("truncated ELF".into()))
        };
        if elf.get(0..4) != Some(b"\x7fELF") {
            return Err(BtfError("not an ELF object".into()));
        }
        let shoff = u64_at(0x28)? as usize;
        let shentsize = u16_at(0x3a)? as usize;
        let shnum = u16_at(0x3c)? as usize;
        let shstrndx = u16_at(0x3e)? as usize;
        let section = |i: usize| -> Result<(u32, usize, usize), BtfError> {
            let h = shoff + i * shentsize;
            Ok((
                u32_at(elf, h)?,
                u64_at(h + 0x18)? as usize,
                u64_at(h + 0x20)? as usize,
            ))
        };
        let (_, names_off, _) = section(shstrndx)?;
        for i in 0..shnum {
            let (name, off, size) = section(i)?;
            let start = names_off + name as usize;
            let name_bytes = elf
                .get(start..)
                .and_then(|s| s.split(|&c| c == 0).next())
                .unwrap_or_default();
            if name_bytes == b".BTF" {
                let data = elf
                    .get(off..off + size)
                    .ok_or_else(|| BtfError(".BTF out of bounds".into()))?;
                return Self::parse(data);
            }
        }
        Err(BtfError("the object has no .BTF section".into()))
    }

    fn ty(&self, id: u32) -> Option<&Type> {
        id.checked_sub(1).and_then(|i| self.types.get(i as usize))
    }

    fn name(&self, off: u32) -> String {
        self.strings
            .get(off as usize..)
            .and_then(|s| s.split(|&c| c == 0).next())
            .map(|s| String::from_utf8_lossy(s).into_owned())
            .unwrap_or_default()
    }

    /// The id of the global variable `name` (a map definition is one).
    pub fn var(&self, name: &str) -> Option<u32> {
        self.types
            .iter()
            .position(|t| t.kind == KIND_VAR && self.name(t.name_off) == name)
            .map(|i| i as u32 + 1)
    }

    /// The members of the struct behind `id` (through VAR, typedef and
    /// qualifiers): (name, type id).
    fn members(&self, id: u32) -> Vec<(String, u32, u32)> {
        let id = self.resolve(id);
        let Some(t) = self.ty(id) else {
            return Vec::new();
        };
        if t.kind != KIND_STRUCT && t.kind != KIND_UNION {
            return Vec::new();
        }
        (0..t.vlen as usize)
            .map(|i| {
                let m = &t.extra[i * 12..i * 12 + 12];
                let name = u32::from_le_bytes(m[0..4].try_into().unwrap());
                let ty = u32::from_le_bytes(m[4..8].try_into().unwrap());
                let raw = u32::from_le_bytes(m[8..12].try_into().unwrap());
                let bit_off = if t.kflag { raw & 0x00ff_ffff } else { raw };
                (self.name(name), ty, bit_off)
            })
            .collect()
    }

    /// Skips VAR, typedefs and qualifiers.
    fn resolve(&self, mut id: u32) -> u32 {
        for _ in 0..32 {
            match self.ty(id) {
                Some(t)
                    if matches!(
                        t.kind,
                        KIND_VAR
                            | KIND_TYPEDEF
                            | KIND_VOLATILE
                            | KIND_CONST
                            | KIND_RESTRICT
                            | KIND_TYPE_TAG
                    ) =>
                {
                    id = t.size_or_type
                }
                _ => break,
            }
        }
        id
    }

    /// The key and value type ids of the BTF map definition `map_name`
    /// (its `key`/`value` members point to them).
    pub fn map_types(&self, map_name: &str) -> Option<(u32, u32)> {
        let var = self.var(map_name)?;
        let mut key = None;
        let mut value = None;
        for (name, ty, _) in self.members(var) {
            let target = self.ty(ty).filter(|t| t.kind == KIND_PTR)?.size_or_type;
            match name.as_str() {
                "key" => key = Some(target),
                "value" => value = Some(target),
                _ => {}
            }
        }
        Some((key?, value?))
    }

    /// The full layout of type `id`, e.g. `FdbKey(8){mac@0:[u8(1);6],_pad@48:[u8(1);2]}`.
    pub fn signature(&self, id: u32) -> String {
        let mut out = String::new();
        self.write_signature(id, &mut out, 0);
        out
    }

    fn write_signature(&self, id: u32, out: &mut String, depth: usize) {
        let id = self.resolve(id);
        let Some(t) = self.ty(id) else {
            out.push_str(if id == 0 { "void" } else { "?" });
            return;
        };
        if depth > 16 {
            out.push_str("...");
            return;
        }
        let name = self.name(t.name_off);
        match t.kind {
            KIND_INT | KIND_FLOAT | KIND_ENUM | KIND_ENUM64 => {
                let _ = write!(out, "{name}({})", t.size_or_type);
            }
            KIND_PTR => {
                out.push('*');
                self.write_signature(t.size_or_type, out, depth + 1);
            }
            KIND_ARRAY => {
                let elem = u32::from_le_bytes(t.extra[0..4].try_into().unwrap());
                let n = u32::from_le_bytes(t.extra[8..12].try_into().unwrap());
                out.push('[');
                self.write_signature(elem, out, depth + 1);
                let _ = write!(out, ";{n}]");
            }
            KIND_STRUCT | KIND_UNION => {
                let _ = write!(out, "{name}({}){{", t.size_or_type);
                for (i, (m, ty, off)) in self.members(id).into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    let _ = write!(out, "{m}@{off}:");
                    self.write_signature(ty, out, depth + 1);
                }
                out.push('}');
            }
            _ => {
                let _ = write!(out, "{name}#{}", t.kind);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob from (name, info, size_or_type, extra) entries.
    fn blob(strings: &[u8], types: &[(u32, u32, u32, Vec<u8>)]) -> Vec<u8> {
        let mut t = Vec::new();
        for (name, info, st, extra) in types {
            t.extend(name.to_le_bytes());
            t.extend(info.to_le_bytes());
            t.extend(st.to_le_bytes());
            t.extend(extra);
        }
        let mut b = Vec::new();
        b.extend(BTF_MAGIC.to_le_bytes());
        b.extend([1u8, 0]);
        b.extend(24u32.to_le_bytes());
        b.extend(0u32.to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((t.len() as u32).to_le_bytes());
        b.extend((strings.len() as u32).to_le_bytes());
        b.extend(t);
        b.extend(strings);
        b
    }

    fn words(w: &[u32]) -> Vec<u8> {
        w.iter().flat_map(|x| x.to_le_bytes()).collect()
    }

    #[test]
    fn signatures_spell_the_layout() {
        // strings: 0:"" 1:"u8" 4:"Key" 8:"mac" 12:"_pad" 17:"u32" 21:"m" 23:"key" 27:"value" 33:"fdb"
        let strings = b"\0u8\0Key\0mac\0_pad\0u32\0m\0key\0value\0fdb\0";
        let types = vec![
            (1, KIND_INT << 24, 1, words(&[8])),         // 1 u8
            (0, KIND_ARRAY << 24, 0, words(&[1, 1, 6])), // 2 [u8;6]
            (0, KIND_ARRAY << 24, 0, words(&[1, 1, 2])), // 3 [u8;2]
            (4, KIND_STRUCT << 24 | 2, 8, words(&[8, 2, 0, 12, 3, 48])), // 4 Key
            (17, KIND_INT << 24, 4, words(&[32])),       // 5 u32
            (0, KIND_PTR << 24, 4, vec![]),              // 6 *Key
            (0, KIND_PTR << 24, 5, vec![]),              // 7 *u32
            (21, KIND_STRUCT << 24 | 2, 16, words(&[23, 6, 0, 27, 7, 64])), // 8 map def
            (33, KIND_VAR << 24, 8, words(&[1])),        // 9 var fdb
        ];
        let btf = Btf::parse(&blob(strings, &types)).unwrap();
        let (k, v) = btf.map_types("fdb").unwrap();
        assert_eq!(
            btf.signature(k),
            "Key(8){mac@0:[u8(1);6],_pad@48:[u8(1);2]}"
        );
        assert_eq!(btf.signature(v), "u32(4)");
        assert!(btf.map_types("nope").is_none());
        assert!(Btf::parse(b"\0\0").is_err());
    }
}
