use super::*;
use dockgate_policy::gojson::parse;

fn volumes() -> Vec<JobVolume> {
    job_volumes(&serde_json::json!({"Mounts": [
        {"Type": "volume", "Name": "ci.build", "Destination": "/builds", "RW": true},
        {"Type": "volume", "Name": "ci.cache", "Destination": "/builds/cache", "RW": false},
        {"Type": "bind", "Source": "/run/dockgate/jobs/x", "Destination": "/run/dockgate", "RW": false},
    ]}))
}

fn body(json: &str) -> Value {
    let v = parse(json.as_bytes()).unwrap();
    v.validate().unwrap();
    v
}

fn run(json: &str) -> Result<(Value, Vec<(String, String)>), String> {
    let mut v = body(json);
    let t = extract(&mut v, &volumes(), &[PathBuf::from("/srv/shared")])?;
    let links = apply(&mut v, &t, &["/var/lib/db".to_string()])?;
    Ok((v, links))
}

fn mounts(v: &Value) -> Vec<String> {
    v.path(&["HostConfig", "Mounts"])
        .map(Value::items)
        .unwrap_or_default()
        .iter()
        .map(|m| {
            format!(
                "{} {}->{} ro={}",
                m.field("Type").and_then(Value::as_str).unwrap_or(""),
                m.field("Source").and_then(Value::as_str).unwrap_or(""),
                m.field("Target").and_then(Value::as_str).unwrap_or(""),
                m.field("ReadOnly").is_some_and(Value::is_true)
            )
        })
        .collect()
}

#[test]
fn a_volume_root_is_mounted_at_the_target() {
    let (v, links) = run(r#"{"HostConfig":{"Binds":["/builds:/src"]}}"#).unwrap();
    assert!(links.is_empty());
    assert_eq!(mounts(&v), ["volume ci.build->/src ro=false"]);
    assert!(v.path(&["HostConfig", "Binds"]).unwrap().is_empty_array());
}

#[test]
fn a_path_below_is_reached_through_a_symlink() {
    let (v, links) = run(
        r#"{"HostConfig":{"Binds":["/builds/proj/./app:/src:ro","/builds/proj:/w","named:/data"]}}"#,
    )
    .unwrap();
    assert_eq!(
        mounts(&v),
        [
            "volume ci.build->/.dockgate/volumes/0 ro=true",
            "volume ci.build->/.dockgate/volumes/1 ro=false"
        ]
    );
    assert_eq!(
        links,
        [
            (
                "src".to_string(),
                "/.dockgate/volumes/0/proj/app".to_string()
            ),
            ("w".to_string(), "/.dockgate/volumes/1/proj".to_string()),
        ]
    );
    // Named volumes are the tenant's, untouched.
    let binds: Vec<&str> = v
        .path(&["HostConfig", "Binds"])
        .unwrap()
        .items()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(binds, ["named:/data"]);
}

#[test]
fn the_deepest_volume_wins_and_read_only_volumes_stay_read_only() {
    let (v, _) = run(r#"{"HostConfig":{"Binds":["/builds/cache:/c:rw"]}}"#).unwrap();
    assert_eq!(mounts(&v), ["volume ci.cache->/c ro=true"]);
}

#[test]
fn mounts_of_type_bind_are_translated_too() {
    let (v, links) = run(
        r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/builds/p","Target":"/src"},
            {"Type":"tmpfs","Target":"/tmp"}]}}"#,
    )
    .unwrap();
    assert_eq!(
        links,
        [("src".to_string(), "/.dockgate/volumes/0/p".to_string())]
    );
    assert_eq!(mounts(&v).len(), 2);
}

#[test]
fn what_is_not_in_a_volume_is_refused_or_left_to_the_allow_list() {
    for bad in [
        r#"{"HostConfig":{"Binds":["/:/host"]}}"#,
        r#"{"HostConfig":{"Binds":["/etc:/x"]}}"#,
        r#"{"HostConfig":{"Binds":["/var/run/docker.sock:/var/run/docker.sock"]}}"#,
        r#"{"HostConfig":{"Binds":["/run/dockgate:/s"]}}"#,
        r#"{"HostConfig":{"Binds":["/buildsx:/s"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds/../etc:/s"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds:/"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds:/a/../b"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds:/s:rshared"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds:/s:z"]}}"#,
        r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/etc","Target":"/x"}]}}"#,
        r#"{"HostConfig":{"Mounts":[{"Type":"bind","Source":"/builds","Target":"/x",
            "BindOptions":{"Propagation":"rshared"}}]}}"#,
    ] {
        assert!(run(bad).is_err(), "{bad}");
    }
    let (v, links) = run(r#"{"HostConfig":{"Binds":["/srv/shared/x:/x"]}}"#).unwrap();
    assert!(links.is_empty());
    assert_eq!(v.path(&["HostConfig", "Binds"]).unwrap().items().len(), 1);
}

#[test]
fn a_symlinked_target_under_another_mount_is_refused() {
    let err = run(r#"{"HostConfig":{"Binds":["/builds/p:/data/src","v:/data"]}}"#).unwrap_err();
    assert!(err.contains("would hide it"), "{err}");
    let err = run(r#"{"Volumes":{"/data":{}},"HostConfig":{"Binds":["/builds/p:/data/src"]}}"#)
        .unwrap_err();
    assert!(err.contains("would hide it"), "{err}");
}

#[test]
fn a_volumes_entry_for_the_target_gives_way() {
    // compose 1.29 sends `Volumes` with each bind's target.
    let (v, links) = run(
        r#"{"Volumes":{"/src":{},"/other":{}},"HostConfig":{"Binds":["/builds/proj:/src:rw"]}}"#,
    )
    .unwrap();
    assert_eq!(
        links,
        [("src".to_string(), "/.dockgate/volumes/0/proj".to_string())]
    );
    let keys: Vec<&str> = v
        .field("Volumes")
        .unwrap()
        .members()
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(keys, ["/other"]);
}

#[test]
fn binds_inside_binds_are_the_same_place_or_refused() {
    // The inner one shows what the outer one shows there already: dropped.
    let (v, links) =
        run(r#"{"HostConfig":{"Binds":["/builds/p:/app","/builds/p/build:/app/build"]}}"#).unwrap();
    assert_eq!(
        links,
        [("app".to_string(), "/.dockgate/volumes/0/p".to_string())]
    );
    assert_eq!(mounts(&v).len(), 1);
    let (_, links) = run(r#"{"HostConfig":{"Binds":["/builds:/b","/builds/p:/b/p"]}}"#).unwrap();
    assert!(links.is_empty());
    // Anything else would write a link into the job's volume: refused.
    for bad in [
        r#"{"HostConfig":{"Binds":["/builds/p:/app","/builds/p/conf.local.yml:/app/conf.yml"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds:/b","/builds/q:/b/p"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds/p:/app:ro","/builds/p/x:/app/x"]}}"#,
        r#"{"HostConfig":{"Binds":["/builds/p:/app","/builds/q:/app"]}}"#,
    ] {
        assert!(run(bad).is_err(), "{bad}");
    }
}

#[test]
fn an_images_volume_cannot_be_a_links_place() {
    let err = run(r#"{"HostConfig":{"Binds":["/builds/p/db:/var/lib/db"]}}"#).unwrap_err();
    assert!(err.contains("VOLUME"), "{err}");
    // A volume's root can go there, and a link below the image's volume is in the child's.
    assert!(run(r#"{"HostConfig":{"Binds":["/builds:/var/lib/db"]}}"#).is_ok());
    assert!(run(r#"{"HostConfig":{"Binds":["/builds/p:/var/lib/db/p"]}}"#).is_ok());
}
