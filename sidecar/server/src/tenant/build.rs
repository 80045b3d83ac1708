//! A tenant's classic build: the Dockerfile's images looked up in the tenant's namespace
//! ([`dockgate_tenant::build`] rewrites it), and the triggers they would run checked.

use std::collections::BTreeMap;
use std::path::Path;

use dockgate_tenant::build::{plan, triggers_allowed};
use serde_json::Value as Json;

use super::lookup::{self, ImageUse};
use crate::config::Tenant;
use crate::decision::{Refusal, Status};

/// The Dockerfile dockerd gets for `text`: images resolved, stages labelled. `checks`: the
/// role is conservative (base images' `ONBUILD ADD <url>` refused too).
pub async fn rewrite_dockerfile(
    dockerd: &Path,
    tenant: &Tenant,
    args: &BTreeMap<String, Option<String>>,
    text: &str,
    checks: bool,
) -> Result<String, Refusal> {
    let plan = plan(text, args).map_err(|e| Refusal::new(Status::Forbidden, e))?;
    let mut resolved = BTreeMap::new();
    for image in plan.images() {
        let engine = lookup::image(dockerd, tenant, &image, ImageUse::Read)
            .await
            .map_err(|r| {
                if r.status != Status::NotFound {
                    return r;
                }
                Refusal::new(
                    Status::NotFound,
                    format!(
                        "the Dockerfile builds from {image}: No such image: {image} (a tenant's \
                         build uses its own and the shared images, and does not pull: docker \
                         pull {image} first)"
                    ),
                )
            })?;
        let (status, json) = lookup::ask(
            dockerd,
            &format!("/images/{}/json", lookup::image_path(&engine)),
        )
        .await?;
        let triggers: Vec<&str> = match json.pointer("/Config/OnBuild") {
            Some(Json::Array(t)) if status == 200 => t.iter().filter_map(Json::as_str).collect(),
            _ => Vec::new(),
        };
        triggers_allowed(&image, triggers.iter().copied())
            .map_err(|e| Refusal::new(Status::Forbidden, e))?;
        if checks {
            if let Some(r) = dockgate_policy::dockerfile::remote_trigger(triggers.iter().copied()) {
                return Err(Refusal::new(
                    Status::Forbidden,
                    format!(
                        "{image} has the trigger ONBUILD {:?}, which would make the engine fetch \
                         {} from its own network",
                        r.instruction, r.source
                    ),
                ));
            }
        }
        resolved.insert(image, engine);
    }
    Ok(plan.write(&tenant.name, &resolved))
}
