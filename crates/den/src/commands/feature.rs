//! `den feature publish`: Features to an OCI registry, as the reference
//! CLI's `features publish` lays them out.

use anyhow::Context;
use serde_json::json;

use crate::cli::{FeatureCommand, Output};
use crate::commands::print_json;
use crate::exit;

pub fn run(cmd: FeatureCommand) -> anyhow::Result<i32> {
    let FeatureCommand::Publish { path, namespace, output } = cmd;
    let folders =
        den_features::publish::feature_folders(&path).with_context(|| format!("reading {}", path.display()))?;
    if folders.is_empty() {
        anyhow::bail!("{} holds no devcontainer-feature.json (nor do its sub-folders)", path.display());
    }
    let client = den_oci::Client::default();
    let mut done = Vec::new();
    for dir in folders {
        let p = den_features::publish::publish(&client, &dir, &namespace)?;
        if output == Output::Text {
            eprintln!("published {} {} to {} ({}) as {}", p.id, p.version, p.reference, p.digest, p.tags.join(", "));
        }
        done.push(
            json!({"id": p.id, "version": p.version, "reference": p.reference, "digest": p.digest, "tags": p.tags}),
        );
    }
    if output == Output::Json {
        print_json(&json!({ "published": done }))?;
    }
    Ok(exit::OK)
}
