//! `netlab map list` and `netlab map dump NAME`.

use std::os::fd::AsFd;

use anyhow::{Context as _, bail};
use aya::maps::MapData;
use serde::Serialize;

use super::{Lab, decode};
use crate::bpf::{
    fs,
    maps::{MapSpec, all_specs, layout_mismatch, spec_of},
    sys::{self, RawEntry, RawMapInfo},
};

/// One pinned map, as `map list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct MapRow {
    pub name: String,
    /// Kernel map id (`bpftool map show id N`).
    pub id: u32,
    /// `hash`, `array`, `percpu_array`, `lru_hash`.
    #[serde(rename = "type")]
    pub map_type: String,
    pub key_size: u32,
    pub value_size: u32,
    pub max_entries: u32,
    /// Entries in use (array slots that hold nothing are not counted).
    pub entries: usize,
    /// entries / max_entries, in percent.
    pub fill_percent: f64,
    /// Whether the map carries BTF (bpftool then prints it structured).
    pub btf: bool,
    /// `ok`, or how the pinned map differs from this build's layout.
    pub layout: String,
    pub pin: String,
}

/// A pinned map opened for reading.
pub struct OpenMap {
    pub spec: &'static MapSpec,
    pub data: MapData,
    pub info: RawMapInfo,
}

impl OpenMap {
    /// Every entry as bytes.
    pub fn raw(&self) -> anyhow::Result<Vec<RawEntry>> {
        if self.spec.map_type == aya::maps::MapType::RingBuf {
            bail!(
                "map {} is a ring buffer of events, not a table: read it with `netlab monitor`",
                self.spec.name
            );
        }
        sys::dump(self.data.fd().as_fd(), &self.info)
            .with_context(|| format!("cannot read map {}", self.spec.name))
    }

    /// Every entry in use, decoded. Refuses a map whose layout differs
    /// from this build's: it would be misread.
    pub fn decoded(&self, cx: &decode::Context) -> anyhow::Result<Vec<decode::Decoded>> {
        self.check_layout()?;
        let mut rows = Vec::new();
        for e in self.raw()? {
            if decode::is_empty_slot(self.spec.name, &e.values) {
                continue;
            }
            rows.push(
                decode::entry(self.spec.name, &e.key, &e.values, cx)
                    .map_err(|why| anyhow::anyhow!("map {}: {why}", self.spec.name))?,
            );
        }
        rows.sort_by(|a, b| decode::compare_fields(&a.key, &b.key));
        Ok(rows)
    }

    pub fn check_layout(&self) -> anyhow::Result<()> {
        if let Some(detail) = layout_mismatch(self.spec, &self.info) {
            bail!(
                "pinned map {} does not match this netlab's layout ({detail}); it was left by \
                 another netlab version and is not decoded: run `netlab down` and `netlab up` \
                 to rebuild the lab",
                self.spec.name
            );
        }
        Ok(())
    }
}

fn valid_names() -> String {
    all_specs().map(|s| s.name).collect::<Vec<_>>().join(", ")
}

/// Opens the lab's map `name`, with errors that say what exists.
pub fn open(lab: &Lab, name: &str) -> anyhow::Result<OpenMap> {
    let spec = spec_of(name)
        .with_context(|| format!("unknown map {name:?}; valid names: {}", valid_names()))?;
    let path = lab.dir.join(spec.name);
    if !path.exists() {
        bail!(
            "map {name} is not pinned in lab {} ({} does not exist{})",
            lab.name,
            path.display(),
            if spec.name.starts_with("nat_") {
                ": the lab has no source NAT"
            } else if spec.name.starts_with("nat6_") {
                ": the lab has no NAT66 (a netlab before IPv6 built it)"
            } else {
                ""
            }
        );
    }
    let data =
        MapData::from_pin(&path).with_context(|| format!("cannot open {}", path.display()))?;
    let info = sys::map_info(data.fd().as_fd())
        .with_context(|| format!("cannot read the description of {}", path.display()))?;
    Ok(OpenMap { spec, data, info })
}

/// Every pinned map of the lab, in the order the programs declare them,
/// then pins this build does not know.
pub fn list(lab: &Lab) -> anyhow::Result<Vec<MapRow>> {
    let mut rows = Vec::new();
    for spec in all_specs() {
        let path = lab.dir.join(spec.name);
        if !path.exists() {
            continue;
        }
        let map = open(lab, spec.name)?;
        let layout = layout_mismatch(spec, &map.info).unwrap_or_else(|| "ok".into());
        let entries = if spec.map_type == aya::maps::MapType::RingBuf {
            0 // a stream, not entries (`max` is its size in bytes)
        } else {
            map.raw()?
                .iter()
                .filter(|e| !decode::is_empty_slot(spec.name, &e.values))
                .count()
        };
        rows.push(row(spec.name, &map.info, entries, layout, &path));
    }
    let known: Vec<&str> = all_specs().map(|s| s.name).collect();
    for name in fs::entries(&lab.dir)? {
        if known.contains(&name.as_str()) || name.starts_with("link_") || name.starts_with("prog_")
        {
            continue;
        }
        let path = lab.dir.join(&name);
        if let Ok(data) = MapData::from_pin(&path)
            && let Ok(info) = sys::map_info(data.fd().as_fd())
        {
            let entries = sys::dump(data.fd().as_fd(), &info).map_or(0, |e| e.len());
            rows.push(row(
                &name,
                &info,
                entries,
                "unknown to this netlab".into(),
                &path,
            ));
        }
    }
    Ok(rows)
}

fn row(
    name: &str,
    info: &RawMapInfo,
    entries: usize,
    layout: String,
    path: &std::path::Path,
) -> MapRow {
    MapRow {
        name: name.to_string(),
        id: info.id,
        map_type: sys::map_type_name(info.map_type),
        key_size: info.key_size,
        value_size: info.value_size,
        max_entries: info.max_entries,
        entries,
        fill_percent: if info.max_entries == 0 {
            0.0
        } else {
            (entries as f64 * 1000.0 / info.max_entries as f64).round() / 10.0
        },
        btf: info.btf_id != 0 && info.btf_value_type_id != 0,
        layout,
        pin: path.display().to_string(),
    }
}

pub fn render_list(rows: &[MapRow]) -> String {
    let mut t = super::table([
        "map", "id", "type", "key", "value", "max", "entries", "fill", "btf", "layout",
    ]);
    for r in rows {
        t.add_row(vec![
            r.name.clone(),
            r.id.to_string(),
            r.map_type.clone(),
            format!("{}B", r.key_size),
            format!("{}B", r.value_size),
            r.max_entries.to_string(),
            r.entries.to_string(),
            format!("{:.1}%", r.fill_percent),
            if r.btf { "yes" } else { "no" }.into(),
            r.layout.clone(),
        ]);
    }
    t.to_string()
}

/// `map dump NAME --json`.
#[derive(Clone, Debug, Serialize)]
pub struct MapDump {
    pub map: String,
    #[serde(rename = "type")]
    pub map_type: String,
    pub max_entries: u32,
    pub entries: Vec<decode::Decoded>,
}

pub fn dump(lab: &Lab, name: &str) -> anyhow::Result<MapDump> {
    let map = open(lab, name)?;
    let entries = map.decoded(&lab.decode_context())?;
    Ok(MapDump {
        map: map.spec.name.to_string(),
        map_type: sys::map_type_name(map.info.map_type),
        max_entries: map.info.max_entries,
        entries,
    })
}

/// The dump as a table: one column per key field, then per value field.
pub fn render_dump(d: &MapDump) -> String {
    let Some(first) = d.entries.first() else {
        return format!("map {} ({}): no entries\n", d.map, d.map_type);
    };
    let key_cols: Vec<&str> = first.key.0.iter().map(|(k, _)| *k).collect();
    let value_cols: Vec<&str> = first.value.0.iter().map(|(k, _)| *k).collect();
    let header: Vec<String> = key_cols
        .iter()
        .map(|c| format!("key.{c}"))
        .chain(value_cols.iter().map(|c| c.to_string()))
        .collect();
    let mut t = super::table(header);
    for e in &d.entries {
        let cell = |f: &decode::Fields, c: &str| f.get(c).map(decode::cell).unwrap_or_default();
        let mut row: Vec<String> = key_cols.iter().map(|c| cell(&e.key, c)).collect();
        row.extend(value_cols.iter().map(|c| {
            if *c == "age_ms" {
                f64_ms(e.value.get(c))
            } else {
                cell(&e.value, c)
            }
        }));
        t.add_row(row);
    }
    let per_cpu = if first.per_cpu.is_some() {
        " (per-CPU values summed; --json lists each CPU)"
    } else {
        ""
    };
    format!(
        "map {} ({}, {} of {} entries){per_cpu}\n{t}\n",
        d.map,
        d.map_type,
        d.entries.len(),
        d.max_entries
    )
}

fn f64_ms(v: Option<&serde_json::Value>) -> String {
    v.and_then(serde_json::Value::as_u64)
        .map(|ms| decode::duration(std::time::Duration::from_millis(ms)))
        .unwrap_or_default()
}

/// `map lookup NAME KEY --json`: the entry found under the key.
#[derive(Clone, Debug, Serialize)]
pub struct MapLookup {
    pub map: String,
    /// The key as the kernel sees it (hex), whatever notation it was given in.
    pub key_hex: String,
    pub entry: decode::Decoded,
}

/// Looks one key up, written in the map's key notation (see `keys`). A key
/// of the wrong shape, and a key with no entry, are errors.
pub fn lookup(lab: &Lab, name: &str, words: &[&str]) -> anyhow::Result<MapLookup> {
    let map = open(lab, name)?;
    map.check_layout()?;
    let cx = lab.decode_context();
    let key = super::keys::parse(map.spec.name, words, &cx.ifnames)
        .map_err(|e| anyhow::anyhow!("bad key for map {}: {e}", map.spec.name))?;
    if key.len() != map.info.key_size as usize {
        bail!(
            "bad key for map {}: {} bytes, but its keys are {} bytes ({})",
            map.spec.name,
            key.len(),
            map.info.key_size,
            super::keys::shape(map.spec.name)
        );
    }
    let key_hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    let values = sys::lookup(map.data.fd().as_fd(), &map.info, &key)
        .with_context(|| format!("cannot read map {}", map.spec.name))?
        .with_context(|| {
            format!(
                "map {} has no entry for key {} (hex:{key_hex})",
                map.spec.name,
                words.join(" ")
            )
        })?;
    let entry = decode::entry(map.spec.name, &key, &values, &cx)
        .map_err(|why| anyhow::anyhow!("map {}: {why}", map.spec.name))?;
    Ok(MapLookup {
        map: map.spec.name.to_string(),
        key_hex,
        entry,
    })
}

/// The entry as `field value` lines, key first.
pub fn render_lookup(l: &MapLookup) -> String {
    let mut t = super::table(["field", "value"]);
    for (k, v) in &l.entry.key.0 {
        t.add_row(vec![format!("key.{k}"), decode::cell(v)]);
    }
    for (k, v) in &l.entry.value.0 {
        let shown = if *k == "age_ms" {
            f64_ms(Some(v))
        } else {
            decode::cell(v)
        };
        t.add_row(vec![k.to_string(), shown]);
    }
    format!("map {} key hex:{}\n{t}\n", l.map, l.key_hex)
}
