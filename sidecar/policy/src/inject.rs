//! The `inject` policy: settings the operator imposes on every container created through the
//! gateway (labels, resource limits, ulimits, logging, runtime, hosts, DNS, environment),
//! written into the create body before it is forwarded, so `docker inspect` shows them.

use crate::gojson::Value;

/// A ulimit to impose (`--ulimit name=soft:hard`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Ulimit {
    pub name: String,
    pub soft: i64,
    pub hard: i64,
}

/// What the `inject` policy adds. Limits are maxima: a request asking for less keeps its own.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Injection {
    /// Labels set on the container (replacing a label of the same key).
    pub labels: Vec<(String, String)>,
    /// `HostConfig.Memory` in bytes.
    pub memory: Option<i64>,
    /// `HostConfig.PidsLimit`.
    pub pids_limit: Option<i64>,
    /// `HostConfig.NanoCpus` (1e9 = one CPU).
    pub nano_cpus: Option<i64>,
    pub ulimits: Vec<Ulimit>,
    /// `HostConfig.LogConfig`: driver and options.
    pub log_driver: Option<(String, Vec<(String, String)>)>,
    /// `HostConfig.Runtime`.
    pub runtime: Option<String>,
    /// `HostConfig.ExtraHosts` entries (`name:address`), added.
    pub extra_hosts: Vec<String>,
    /// `HostConfig.Dns` servers, added.
    pub dns: Vec<String>,
    /// `Env` entries (`KEY=value`), replacing the request's value of the same key.
    pub env: Vec<String>,
}

fn int(v: Option<&Value>) -> i64 {
    match v {
        Some(Value::Number(n)) => n.as_i64().unwrap_or(i64::MAX),
        _ => 0,
    }
}

fn string(s: &str) -> Value {
    Value::String(s.to_string())
}

/// Applies the injection to a `containers/create` body.
pub fn inject(body: &mut Value, inj: &Injection) {
    for (k, v) in &inj.labels {
        body.object_field("Labels").set_map_key(k, string(v));
    }
    if !inj.env.is_empty() {
        let mut env: Vec<Value> = body
            .field("Env")
            .map(|e| e.items().to_vec())
            .unwrap_or_default();
        for entry in &inj.env {
            let key = entry.split('=').next().unwrap_or(entry);
            env.retain(|e| {
                e.as_str()
                    .map_or(true, |s| s.split('=').next().unwrap_or(s) != key)
            });
            env.push(string(entry));
        }
        body.set_field("Env", Value::Array(env));
    }

    let host = body.object_field("HostConfig");
    // Limits: 0 (and -1 for pids) mean unlimited; anything above the maximum is lowered.
    for (field, max) in [
        ("Memory", inj.memory),
        ("PidsLimit", inj.pids_limit),
        ("NanoCpus", inj.nano_cpus),
    ] {
        let Some(max) = max else { continue };
        let asked = int(host.field(field));
        if asked <= 0 || asked > max {
            host.set_field(field, Value::Number(max.into()));
        }
    }
    if !inj.ulimits.is_empty() {
        let mut ulimits: Vec<Value> = host
            .field("Ulimits")
            .map(|u| u.items().to_vec())
            .unwrap_or_default();
        for u in &inj.ulimits {
            ulimits.retain(|e| e.field("Name").and_then(Value::as_str) != Some(u.name.as_str()));
            let mut entry = Value::Null;
            entry.set_field("Name", string(&u.name));
            entry.set_field("Soft", Value::Number(u.soft.into()));
            entry.set_field("Hard", Value::Number(u.hard.into()));
            ulimits.push(entry);
        }
        host.set_field("Ulimits", Value::Array(ulimits));
    }
    if let Some((driver, options)) = &inj.log_driver {
        let mut log = Value::Null;
        log.set_field("Type", string(driver));
        let mut config = Value::Object(Vec::new());
        for (k, v) in options {
            config.set_map_key(k, string(v));
        }
        log.set_field("Config", config);
        host.set_field("LogConfig", log);
    }
    if let Some(runtime) = &inj.runtime {
        host.set_field("Runtime", string(runtime));
    }
    for (field, add) in [("ExtraHosts", &inj.extra_hosts), ("Dns", &inj.dns)] {
        if add.is_empty() {
            continue;
        }
        let mut items: Vec<Value> = host
            .field(field)
            .map(|v| v.items().to_vec())
            .unwrap_or_default();
        for a in add {
            if !items.iter().any(|i| i.as_str() == Some(a)) {
                items.push(string(a));
            }
        }
        host.set_field(field, Value::Array(items));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gojson::parse;

    fn injection() -> Injection {
        Injection {
            labels: vec![("dockgate.tenant".into(), "ci".into())],
            memory: Some(512 << 20),
            pids_limit: Some(256),
            nano_cpus: Some(1_000_000_000),
            ulimits: vec![Ulimit {
                name: "nofile".into(),
                soft: 1024,
                hard: 2048,
            }],
            log_driver: Some(("json-file".into(), vec![("max-size".into(), "10m".into())])),
            runtime: Some("runc".into()),
            extra_hosts: vec!["cache.internal:127.0.0.1".into()],
            dns: vec!["127.0.0.53".into()],
            env: vec!["HTTP_PROXY=http://127.0.0.1:3128".into()],
        }
    }

    fn injected(json: &str) -> Value {
        let mut v = parse(json.as_bytes()).unwrap();
        v.validate().unwrap();
        inject(&mut v, &injection());
        let again = parse(v.to_json().as_bytes()).unwrap();
        again.validate().unwrap();
        again
    }

    #[test]
    fn everything_is_added_to_a_bare_create() {
        let v = injected(r#"{"Image":"busybox"}"#);
        assert_eq!(
            v.path(&["Labels"]).unwrap().members()[0].0,
            "dockgate.tenant"
        );
        assert_eq!(int(v.path(&["HostConfig", "Memory"])), 512 << 20);
        assert_eq!(int(v.path(&["HostConfig", "PidsLimit"])), 256);
        assert_eq!(int(v.path(&["HostConfig", "NanoCpus"])), 1_000_000_000);
        let ulimits = v.path(&["HostConfig", "Ulimits"]).unwrap().items();
        assert_eq!(ulimits.len(), 1);
        assert_eq!(int(ulimits[0].field("Hard")), 2048);
        assert_eq!(
            v.path(&["HostConfig", "LogConfig", "Type"])
                .and_then(Value::as_str),
            Some("json-file")
        );
        assert_eq!(
            v.path(&["HostConfig", "Runtime"]).and_then(Value::as_str),
            Some("runc")
        );
        assert_eq!(v.path(&["HostConfig", "Dns"]).unwrap().items().len(), 1);
        assert_eq!(v.field("Env").unwrap().items().len(), 1);
    }

    #[test]
    fn limits_are_maxima_and_user_values_are_replaced_where_they_would_escape() {
        let v = injected(
            r#"{"Env":["HTTP_PROXY=evil","A=1"],"Labels":{"dockgate.tenant":"root"},
                "HostConfig":{"Memory":1048576,"PidsLimit":-1,"nanocpus":4000000000,
                "Ulimits":[{"Name":"nofile","Soft":1,"Hard":999999}],"Dns":["127.0.0.53"]}}"#,
        );
        // Asked for less memory: kept. Unlimited pids, more CPUs: lowered.
        assert_eq!(int(v.path(&["HostConfig", "Memory"])), 1048576);
        assert_eq!(int(v.path(&["HostConfig", "PidsLimit"])), 256);
        assert_eq!(int(v.path(&["HostConfig", "NanoCpus"])), 1_000_000_000);
        assert_eq!(v.path(&["HostConfig", "Ulimits"]).unwrap().items().len(), 1);
        assert_eq!(v.path(&["HostConfig", "Dns"]).unwrap().items().len(), 1);
        let env: Vec<&str> = v
            .field("Env")
            .unwrap()
            .items()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(env, ["A=1", "HTTP_PROXY=http://127.0.0.1:3128"]);
        assert_eq!(
            v.path(&["Labels"]).unwrap().members()[0].1,
            Value::String("ci".into())
        );
    }
}
