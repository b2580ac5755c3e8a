//! `inspect` and `list`.

use anyhow::Result;
use serde_json::{json, Value};

use crate::image::{split_source_ref, ResolvedImage, Source};
use crate::platform::Platform;

pub fn list(src: &str) -> Result<Vec<String>> {
    let source = Source::open(std::path::Path::new(src))?;
    Ok(source.refs())
}

pub fn resolve(spec: &str, platform: &Platform) -> Result<ResolvedImage> {
    let (src, reference) = split_source_ref(spec);
    Source::open(&src)?.resolve(reference.as_deref(), platform)
}

pub fn to_json(img: &ResolvedImage) -> Value {
    let layers: Vec<Value> = img
        .layers
        .iter()
        .map(|l| {
            json!({
                "digest": l.digest.as_ref().map(|d| d.to_string()),
                "blob": l.blob,
                "mediaType": l.media_type,
                "size": l.size,
                "diffID": l.diff_id.to_string(),
            })
        })
        .collect();
    json!({
        "source": img.source,
        "ref": img.reference,
        "manifest": {
            "digest": img.manifest_digest.as_ref().map(|d| d.to_string()),
            "mediaType": img.manifest_media_type,
            "size": img.manifest_size,
        },
        "config": {
            "digest": img.config_digest.to_string(),
            "size": img.config_size,
            "content": serde_json::to_value(&img.config).unwrap_or(Value::Null),
        },
        "layers": layers,
        "totalLayerSize": img.layers.iter().map(|l| l.size).sum::<u64>(),
    })
}

pub fn to_text(img: &ResolvedImage) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("source:   {}", img.source));
    line(format!(
        "ref:      {}",
        img.reference.as_deref().unwrap_or("-")
    ));
    match &img.manifest_digest {
        Some(d) => line(format!(
            "manifest: {d} ({}, {} bytes)",
            img.manifest_media_type, img.manifest_size
        )),
        None => line(format!("manifest: {}", img.manifest_media_type)),
    }
    line(format!(
        "config:   {} ({} bytes)",
        img.config_digest, img.config_size
    ));
    line(format!(
        "platform: {}/{}",
        img.config.os(),
        img.config.architecture()
    ));
    if let Some(cfg) = img.config.config() {
        let mut argv = cfg.entrypoint().clone().unwrap_or_default();
        argv.extend(cfg.cmd().clone().unwrap_or_default());
        line(format!("command:  {argv:?}"));
        if let Some(u) = cfg.user().as_ref().filter(|u| !u.is_empty()) {
            line(format!("user:     {u}"));
        }
    }
    line(format!("layers:   {}", img.layers.len()));
    for (i, l) in img.layers.iter().enumerate() {
        let name = l.digest.as_ref().map_or(l.blob.clone(), |d| d.to_string());
        line(format!(
            "  {i:>3}  {name}  {:>12} bytes  {}",
            l.size,
            l.compression.name()
        ));
    }
    line(format!(
        "total:    {} bytes",
        img.layers.iter().map(|l| l.size).sum::<u64>()
    ));
    out
}
