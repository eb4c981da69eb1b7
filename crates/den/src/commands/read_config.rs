//! `den read-config`: the configuration as den will use it, like
//! `devcontainer read-configuration`.

use anyhow::Context;
use serde_json::{json, Value};

use crate::cli::{Output, ReadConfigArgs};

pub fn run(settings: &crate::settings::Settings, args: ReadConfigArgs) -> anyhow::Result<i32> {
    let folder = std::fs::canonicalize(&args.folder)
        .with_context(|| format!("reading project folder {}", args.folder.display()))?;
    let file = den_devcontainer::find_config(&folder, args.devcontainer_path.as_deref())?;
    let loaded = den_devcontainer::load(&file)?;
    let resolved = den_devcontainer::resolve(&loaded, &folder, &|name| std::env::var(name).ok());

    let mut configuration = resolved.raw.clone();
    if let Value::Object(map) = &mut configuration {
        map.insert("configFilePath".into(), json!(resolved.config_file));
    }
    let mut workspace = json!({ "workspaceFolder": resolved.workspace_folder });
    if let Some(mount) = &resolved.workspace_mount {
        workspace["workspaceMount"] = json!(mount);
    }
    let mut doc = json!({
        "configuration": configuration,
        "workspace": workspace,
        "devcontainerId": resolved.devcontainer_id,
    });
    if args.include_features_configuration {
        doc["featuresConfiguration"] = den_workspace::features::describe(&settings.den()?, &resolved)?;
    }
    let text = match args.output {
        Output::Text => serde_json::to_string_pretty(&doc)?,
        Output::Json => serde_json::to_string(&doc)?,
    };
    println!("{text}");
    Ok(crate::exit::OK)
}
