//! dockgate's decisions on Docker API requests, as far as they need neither a request body
//! nor the engine: the configuration (one TOML file, read by the sidecar and by the nginx
//! module), who is calling ([`identity`]), and what the caller may do ([`decide`], staged by
//! [`head`]). Pure: the sidecar and `ngx_http_dockgate_module` link the same code, so that
//! `dockgate explain`, the sidecar and nginx cannot disagree.

pub mod config;
pub mod decide;
pub mod head;
pub mod identity;
pub mod jobs;
pub mod mirror_pull;
pub mod peer;
