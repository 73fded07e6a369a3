//! The production topology — `compose.yml`, the `Dockerfile`, `.env.example`
//! and `.dockerignore` — checked against the code. No Docker engine runs where
//! the tests do, so every check is static: the files are parsed and held
//! against what the binary itself accepts (the keys of `Config::env_vars`, the
//! command line of `Cli`, the rules of `Config::validate` applied to each
//! service's environment as its container would load it) and against the
//! contract's rules for the topology: a healthcheck on every container,
//! start-up ordered on health, one published port, configuration only through
//! `AGORA_*` variables, and secrets only as `${VAR}` references that
//! `.env.example` lists.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::ops::Range;
use std::path::Path;

use agora::cli::{Cli, Command};
use agora::config::{Config, DEFAULTS, DEMO_ADMIN_PASSWORD, DEMO_INTERNAL_SECRET, DEMO_JWT_SECRET};
use agora::runtime::ALL_SERVICES;
use clap::{Parser, ValueEnum};
use figment::Figment;
use figment::providers::{Format, Toml};
use serde_norway::Value;

/// The official images of the infrastructure, by repository.
const INFRASTRUCTURE: [&str; 5] = ["apache/kafka", "redis", "mongo", "mysql", "postgres"];

/// What each service must be configured with: the real servers it uses (unset,
/// the adapter would quietly be the in-memory one) and the services it calls.
/// The host each of them names is a container the service must wait for.
const NEEDS: [(&str, &[&str]); 4] = [
    ("users", &["users.mongo_url"]),
    ("products", &["products.mysql_url", "kafka.brokers"]),
    ("carts", &["carts.postgres_url", "redis.url", "kafka.brokers", "products.url"]),
    ("gateway", &["redis.url", "users.url", "products.url", "carts.url"]),
];

/// The containers each service waits for, healthy (the contract's topology).
const WAITS_FOR: [(&str, &[&str]); 4] = [
    ("users", &["mongo"]),
    ("products", &["mysql", "kafka"]),
    ("carts", &["postgres", "redis", "kafka", "products"]),
    ("gateway", &["redis", "users", "products", "carts"]),
];

/// The one published port: the gateway's.
const PUBLIC_PORT: u16 = 3000;

/// The optional profile of the metrics, dashboard and trace servers.
const OBSERVABILITY: &str = "observability";
/// What that profile runs, by image repository.
const OBSERVERS: [(&str, &str); 3] =
    [("prometheus", "prom/prometheus"), ("grafana", "grafana/grafana"), ("jaeger", "jaegertracing/jaeger")];

// --- Reading the files -------------------------------------------------------

fn read(file: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// `compose.yml`, its merge keys (`<<: *anchor`) applied as Compose applies them.
fn compose() -> Value {
    let mut compose: Value = serde_norway::from_str(&read("compose.yml")).expect("compose.yml is YAML");
    compose.apply_merge().expect("compose.yml: merge keys");
    compose
}

/// Every entry of `services`, by name.
fn services(compose: &Value) -> BTreeMap<String, &Value> {
    let services = compose.get("services").and_then(Value::as_mapping).expect("compose.yml has services");
    services.iter().map(|(name, service)| (name.as_str().expect("a service name").to_string(), service)).collect()
}

/// The four agora services, named as `agora serve` names them.
fn agora_services() -> Vec<String> {
    ALL_SERVICES.iter().map(|s| s.to_possible_value().expect("a named service").get_name().to_string()).collect()
}

fn is_agora(name: &str) -> bool {
    agora_services().iter().any(|s| s == name)
}

fn needs(name: &str) -> &'static [&'static str] {
    NEEDS.iter().find(|(n, _)| *n == name).map(|(_, keys)| *keys).unwrap_or_default()
}

/// A scalar as Compose reads it (numbers and booleans as their text).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A list given as a YAML sequence or as one string split on spaces
/// (`command`, a healthcheck's `test`).
fn words(value: &Value) -> Vec<String> {
    match value {
        Value::Sequence(items) => items.iter().map(|i| scalar(i).expect("a list of strings")).collect(),
        other => scalar(other).expect("a list or a string").split_whitespace().map(str::to_string).collect(),
    }
}

/// A service's `environment`, given as a map or as a list of `KEY=VALUE` (a
/// bare `KEY`, or a null value, passes the variable through: no value here).
fn environment(service: &Value) -> BTreeMap<String, Option<String>> {
    match service.get("environment") {
        None | Some(Value::Null) => BTreeMap::new(),
        Some(Value::Mapping(map)) => {
            map.iter().map(|(k, v)| (scalar(k).expect("a variable name"), scalar(v))).collect()
        }
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|item| {
                let item = item.as_str().expect("KEY=VALUE");
                match item.split_once('=') {
                    Some((key, value)) => (key.to_string(), Some(value.to_string())),
                    None => (item.to_string(), None),
                }
            })
            .collect(),
        Some(other) => panic!("environment is a map or a list, not {other:?}"),
    }
}

/// Every string in `value`, mapping keys included.
fn strings<'a>(value: &'a Value, out: &mut Vec<&'a str>) {
    match value {
        Value::String(s) => out.push(s),
        Value::Sequence(items) => items.iter().for_each(|v| strings(v, out)),
        Value::Mapping(map) => map.iter().for_each(|(k, v)| {
            strings(k, out);
            strings(v, out);
        }),
        Value::Tagged(tagged) => strings(&tagged.value, out),
        _ => {}
    }
}

/// Every list of strings in `value` (commands, healthcheck tests).
fn lists<'a>(value: &'a Value, out: &mut Vec<Vec<&'a str>>) {
    match value {
        Value::Sequence(items) => {
            out.push(items.iter().filter_map(Value::as_str).collect());
            items.iter().for_each(|v| lists(v, out));
        }
        Value::Mapping(map) => map.values().for_each(|v| lists(v, out)),
        Value::Tagged(tagged) => lists(&tagged.value, out),
        _ => {}
    }
}

/// `.env.example`: the variables it sets, and those it only mentions in a
/// comment (`# NAME=value`: optional, compose.yml has a default).
struct EnvExample {
    set: BTreeMap<String, String>,
    mentioned: BTreeSet<String>,
}

fn variable(line: &str) -> Option<(&str, &str)> {
    let (name, value) = line.split_once('=')?;
    let valid = name.starts_with(|c: char| c.is_ascii_uppercase())
        && name.chars().all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
    valid.then_some((name, value))
}

fn env_example() -> EnvExample {
    let text = read(".env.example");
    let mut example = EnvExample { set: BTreeMap::new(), mentioned: BTreeSet::new() };
    // Each variable has a comment above it, in its block of lines.
    let mut commented = false;
    for line in text.lines().map(str::trim) {
        if line.is_empty() {
            commented = false;
        } else if let Some(comment) = line.strip_prefix('#') {
            match variable(comment.trim()) {
                Some((name, _)) => {
                    example.mentioned.insert(name.to_string());
                }
                None => commented = true,
            }
        } else {
            let (name, value) = variable(line).unwrap_or_else(|| panic!(".env.example: {line:?} is not NAME=value"));
            assert!(commented, ".env.example: {name} has no comment saying what it is");
            assert!(!value.trim().is_empty(), ".env.example: {name} has no placeholder value");
            let first = example.set.insert(name.to_string(), value.to_string()).is_none();
            assert!(first, ".env.example: {name} is set twice");
        }
    }
    assert!(text.contains("openssl rand"), ".env.example says how to generate the secrets (openssl rand -hex 32)");
    example
}

/// The Dockerfile's instructions (keyword, arguments) by stage: continuation
/// lines joined, comments left out, the global `ARG`s' defaults put in the
/// `FROM` lines.
fn dockerfile() -> Vec<Vec<(String, String)>> {
    let mut stages: Vec<Vec<(String, String)>> = Vec::new();
    let mut globals: Vec<(String, String)> = Vec::new();
    let mut pending = String::new();
    for line in read("Dockerfile").lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(part) => {
                pending.push_str(part);
                pending.push(' ');
            }
            None => {
                pending.push_str(line);
                let (keyword, args) = pending.trim().split_once(char::is_whitespace).unwrap_or((pending.trim(), ""));
                let (keyword, mut args) =
                    (keyword.to_uppercase(), args.split_whitespace().collect::<Vec<_>>().join(" "));
                if keyword == "FROM" {
                    for (name, default) in &globals {
                        args = args.replace(&format!("${{{name}}}"), default).replace(&format!("${name}"), default);
                    }
                    stages.push(Vec::new());
                }
                match stages.last_mut() {
                    Some(stage) => stage.push((keyword, args)),
                    None if keyword == "ARG" => {
                        let (name, default) = args.split_once('=').unwrap_or((&args, ""));
                        globals.push((name.to_string(), default.trim_matches('"').to_string()));
                    }
                    None => panic!("Dockerfile: {keyword} before the first FROM"),
                }
                pending.clear();
            }
        }
    }
    stages
}

/// The variables the Dockerfile's `ENV` instructions set.
fn dockerfile_env() -> Vec<String> {
    let mut names = Vec::new();
    for (keyword, args) in dockerfile().into_iter().flatten().filter(|(k, _)| k == "ENV") {
        match args.split_whitespace().next() {
            Some(first) if first.contains('=') => {
                names.extend(args.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, _)| k.to_string()))
            }
            Some(first) => names.push(first.to_string()),
            None => panic!("Dockerfile: an empty {keyword}"),
        }
    }
    names
}

// --- Interpolation: ${VAR} -----------------------------------------------------

/// A `${VAR}` reference in a Compose value.
#[derive(Debug)]
struct Reference {
    name: String,
    /// `${VAR:-default}`, `${VAR-default}` (or `:+`, `+`): usable unset.
    default: Option<String>,
}

fn name_length(text: &str) -> usize {
    text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len())
}

/// The references in `text` with their spans: `${VAR}`, `${VAR:?message}`,
/// `${VAR:-default}` and a bare `$VAR`; `$$` is a literal `$`.
fn references(text: &str) -> Vec<(Range<usize>, Reference)> {
    let bytes = text.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'$' {
            i += 1;
            continue;
        }
        match bytes.get(i + 1) {
            Some(b'$') => i += 2,
            Some(b'{') => {
                // The closing brace, references nested in a default included.
                let mut depth = 0;
                let mut end = None;
                for (j, b) in bytes.iter().enumerate().skip(i + 1) {
                    match b {
                        b'{' => depth += 1,
                        b'}' => {
                            depth -= 1;
                            if depth == 0 {
                                end = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let end = end.unwrap_or_else(|| panic!("an unclosed ${{ in {text:?}"));
                let inner = &text[i + 2..end];
                let (name, rest) = inner.split_at(name_length(inner));
                assert!(!name.is_empty(), "a reference without a name in {text:?}");
                let rest = rest.strip_prefix(':').unwrap_or(rest);
                let default = rest.strip_prefix(['-', '+']).map(str::to_string);
                found.push((i..end + 1, Reference { name: name.to_string(), default }));
                i = end + 1;
            }
            Some(c) if c.is_ascii_alphabetic() || *c == b'_' => {
                let len = name_length(&text[i + 1..]);
                found.push((i..i + 1 + len, Reference { name: text[i + 1..i + 1 + len].to_string(), default: None }));
                i += 1 + len;
            }
            _ => i += 1,
        }
    }
    found
}

/// Every reference in `texts`, those nested in defaults included.
fn all_references(texts: &[&str]) -> Vec<Reference> {
    let mut out = Vec::new();
    for text in texts {
        for (_, reference) in references(text) {
            if let Some(default) = &reference.default {
                out.extend(all_references(&[default.as_str()]));
            }
            out.push(reference);
        }
    }
    out
}

/// `text` is one reference and nothing else, without a default (a default
/// would be a literal secret).
fn is_bare_reference(text: &str) -> bool {
    matches!(references(text).as_slice(), [(span, r)] if *span == (0..text.len()) && r.default.is_none())
}

/// What a variable without a default stands for in these tests: long enough
/// for every rule on secrets, and like no real value.
fn test_value(name: &str) -> String {
    format!("test-{}-0123456789abcdef0123456789abcdef", name.to_lowercase())
}

/// `text` as Compose hands it to the container: each reference replaced by its
/// default, else by a test value.
fn interpolate(text: &str) -> String {
    let mut out = String::new();
    let mut last = 0;
    for (span, reference) in references(text) {
        out.push_str(&text[last..span.start].replace("$$", "$"));
        out.push_str(&match &reference.default {
            Some(default) => interpolate(default),
            None => test_value(&reference.name),
        });
        last = span.end;
    }
    out.push_str(&text[last..].replace("$$", "$"));
    out
}

/// A variable, or a command-line flag, that holds a secret.
fn is_secret_name(name: &str) -> bool {
    let upper = name.to_uppercase();
    ["SECRET", "PASSWORD", "PASSWD", "TOKEN"].iter().any(|word| upper.contains(word)) || upper.ends_with("_AUTH")
}

fn is_secret_flag(flag: &str) -> bool {
    let lower = flag.to_lowercase();
    ["pass", "secret", "token"].iter().any(|word| lower.contains(word))
}

/// The password of every `scheme://user:password@host` URL in `text`.
fn url_passwords(text: &str) -> Vec<&str> {
    // A reference may hold any character: find the URL's parts outside them.
    let mut masked = text.as_bytes().to_vec();
    for (span, _) in references(text) {
        masked[span].fill(b'x');
    }
    let masked = String::from_utf8(masked).expect("masking keeps UTF-8");
    let mut found = Vec::new();
    for (start, _) in masked.match_indices("://") {
        let from = start + 3;
        let end = masked[from..].find(['/', '?', '#', ' ', ',']).map_or(masked.len(), |n| from + n);
        let authority = &masked[from..end];
        if let Some(at) = authority.rfind('@')
            && let Some(colon) = authority[..at].find(':')
        {
            found.push(&text[from + colon + 1..from + at]);
        }
    }
    found
}

// --- The configuration a container loads -----------------------------------

/// The configuration `agora serve` loads in a service's container: the
/// built-in defaults, then its `AGORA_*` environment read as Figment's `Env`
/// provider reads it (`AGORA_A__B` is `a.b`, the value parsed the same way),
/// each `${VAR}` replaced by its default or a test value. It must be valid.
fn container_config(name: &str, service: &Value) -> Config {
    let mut figment = Figment::from(Toml::string(DEFAULTS));
    for (key, value) in environment(service) {
        let Some(key) = key.strip_prefix("AGORA_") else { continue };
        let value: figment::value::Value = interpolate(&value.unwrap_or_default()).parse().unwrap();
        figment = figment.merge((key.to_lowercase().replace("__", "."), value));
    }
    Config::from_figment(figment)
        .unwrap_or_else(|e| panic!("compose.yml: the {name} service's environment would not start it: {e}"))
}

/// A configuration key's value (`users.mongo_url`), if set.
fn setting(config: &Config, key: &str) -> Option<String> {
    let json = serde_json::to_value(config).unwrap();
    match json.pointer(&format!("/{}", key.replace('.', "/")))? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()).filter(|s| !s.trim().is_empty()),
        other => Some(other.to_string()),
    }
}

/// The environment variable that sets a key.
fn env_var(key: &str) -> String {
    format!("AGORA_{}", key.to_uppercase().replace('.', "__"))
}

/// Where a service listens (`<service>.listen`).
fn listen(name: &str, config: &Config) -> SocketAddr {
    let key = format!("{name}.listen");
    setting(config, &key).and_then(|a| a.parse().ok()).unwrap_or_else(|| panic!("{key} is an address"))
}

/// The hosts and ports a setting names: `scheme://user:password@host:port/…`,
/// or a comma-separated list of `host:port` (`kafka.brokers`).
fn endpoints(setting: &str) -> Vec<(String, Option<u16>)> {
    let endpoint = |one: &str| {
        let rest = one.split_once("://").map_or(one, |(_, rest)| rest);
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        let host_port = authority.rsplit_once('@').map_or(authority, |(_, host_port)| host_port);
        match host_port.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), port.parse().ok()),
            None => (host_port.to_string(), None),
        }
    };
    setting.split(',').map(str::trim).filter(|s| !s.is_empty()).map(endpoint).collect()
}

/// A service's `depends_on`, as each dependency and its condition (the list
/// form means `service_started`).
fn depends_on(service: &Value) -> BTreeMap<String, String> {
    let started = || "service_started".to_string();
    match service.get("depends_on") {
        None => BTreeMap::new(),
        Some(Value::Sequence(items)) => {
            items.iter().map(|d| (d.as_str().expect("a service name").to_string(), started())).collect()
        }
        Some(Value::Mapping(map)) => map
            .iter()
            .map(|(dep, how)| {
                let condition = how.get("condition").and_then(Value::as_str).map_or_else(started, str::to_string);
                (dep.as_str().expect("a service name").to_string(), condition)
            })
            .collect(),
        Some(other) => panic!("depends_on is a map or a list, not {other:?}"),
    }
}

/// A published port: the host address it is bound to (all when `None`), the
/// host port (left to Docker when `None`) and the container's port.
#[derive(Debug, PartialEq)]
struct Published {
    ip: Option<String>,
    host: Option<u16>,
    target: u16,
}

/// The ports a service publishes.
fn published(service: &Value) -> Vec<Published> {
    let Some(ports) = service.get("ports").and_then(Value::as_sequence) else { return Vec::new() };
    let port = |v: Option<&Value>| v.and_then(scalar).and_then(|p| p.parse().ok());
    ports
        .iter()
        .map(|entry| match entry {
            Value::Mapping(_) => Published {
                ip: entry.get("host_ip").and_then(scalar),
                host: port(entry.get("published")),
                target: port(entry.get("target")).expect("a target port"),
            },
            short => {
                // [ip:][host:]container[/protocol]
                let text = scalar(short).expect("a port mapping");
                let text = text.split('/').next().unwrap_or_default();
                let parts: Vec<&str> = text.rsplitn(3, ':').collect();
                Published {
                    ip: parts.get(2).map(|ip| ip.to_string()),
                    host: parts.get(1).and_then(|p| p.parse().ok()),
                    target: parts[0].parse().expect("a container port"),
                }
            }
        })
        .collect()
}

/// The Compose profiles a service belongs to (none: it always runs).
fn profiles(service: &Value) -> Vec<String> {
    service.get("profiles").map(words).unwrap_or_default()
}

/// An image's repository (without `docker.io/library/`) and tag.
fn image_parts(image: &str) -> (String, Option<String>) {
    let image = image.split('@').next().unwrap_or_default();
    let slash = image.rfind('/').map_or(0, |i| i + 1);
    let (repository, tag) = match image[slash..].rfind(':') {
        Some(i) => (&image[..slash + i], Some(image[slash + i + 1..].to_string())),
        None => (image, None),
    };
    let repository = repository.trim_start_matches("docker.io/").trim_start_matches("library/");
    (repository.to_string(), tag)
}

/// A tag that names one release (`7.4.8`, `16.13`, `12.12-slim`, `v3.1.0`): a
/// version with its minor part, never `latest`.
fn is_pinned(tag: Option<&str>) -> bool {
    tag.map(|t| t.strip_prefix('v').unwrap_or(t))
        .is_some_and(|t| t.starts_with(|c: char| c.is_ascii_digit()) && t.contains('.'))
}

/// A Compose duration (`20s`, `1m30s`, `500ms`) in seconds.
fn seconds(text: &str) -> f64 {
    let mut total = 0.0;
    let mut rest = text.trim();
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        let number: f64 = rest[..digits].parse().unwrap_or_else(|_| panic!("{text:?} is not a duration"));
        let unit_len = rest[digits..].find(|c: char| c.is_ascii_digit()).unwrap_or(rest.len() - digits);
        let unit = &rest[digits..digits + unit_len];
        total += number
            * match unit {
                "h" => 3600.0,
                "m" => 60.0,
                "s" => 1.0,
                "ms" => 0.001,
                "us" => 0.000_001,
                _ => panic!("{text:?}: unknown unit {unit:?}"),
            };
        rest = &rest[digits + unit_len..];
    }
    total
}

// --- The checks ----------------------------------------------------------------

#[test]
fn every_agora_variable_is_a_configuration_key() {
    let known: BTreeSet<String> = Config::env_vars().into_iter().collect();
    for (name, service) in services(&compose()) {
        for key in environment(service).keys() {
            if is_agora(&name) {
                assert!(
                    key.starts_with("AGORA_"),
                    "compose.yml: {name} sets {key}: the services are configured only through AGORA_* variables"
                );
            }
            if key.starts_with("AGORA_") {
                assert!(
                    known.contains(key),
                    "compose.yml: {name} sets {key}, which no configuration key reads \
                     (every key: src/config/defaults.toml)"
                );
            }
        }
    }
    for key in dockerfile_env().iter().filter(|k| k.starts_with("AGORA_")) {
        assert!(known.contains(key), "Dockerfile: ENV {key} is no configuration key");
    }
}

#[test]
fn each_agora_service_runs_its_own_command_from_the_one_image() {
    let compose = compose();
    let services = services(&compose);
    let mut images = BTreeSet::new();
    let mut builds = Vec::new();
    for name in agora_services() {
        let service = services.get(&name).unwrap_or_else(|| panic!("compose.yml has no {name} service"));
        let command = words(service.get("command").unwrap_or_else(|| panic!("compose.yml: {name} has no command")));
        let cli = Cli::try_parse_from(std::iter::once("agora".to_string()).chain(command.iter().cloned()))
            .unwrap_or_else(|e| panic!("compose.yml: {name}'s command {command:?} is not one agora accepts: {e}"));
        match cli.command {
            Some(Command::Serve { service: served }) => {
                let served = served.to_possible_value().expect("a named service");
                assert_eq!(served.get_name(), name, "compose.yml: the {name} service serves another");
            }
            other => panic!("compose.yml: {name}'s command must be `serve {name}`, not {other:?}"),
        }
        assert!(service.get("entrypoint").is_none(), "compose.yml: {name} keeps the image's entrypoint, agora");
        let image = service.get("image").and_then(Value::as_str);
        images.insert(image.unwrap_or_else(|| panic!("compose.yml: {name} names no image")).to_string());
        if let Some(build) = service.get("build") {
            builds.push((name, build));
        }
    }
    assert_eq!(images.len(), 1, "compose.yml: the four services run one and the same image, not {images:?}");
    assert!(!builds.is_empty(), "compose.yml: an agora service builds the image (build: .)");
    for (name, build) in builds {
        let (context, dockerfile) = match build {
            Value::Mapping(_) => (build.get("context").and_then(scalar), build.get("dockerfile").and_then(scalar)),
            other => (scalar(other), None),
        };
        assert_eq!(context.as_deref(), Some("."), "compose.yml: {name} builds from the top-level folder");
        assert!(
            dockerfile.as_deref().is_none_or(|d| d == "Dockerfile"),
            "compose.yml: {name} builds with the top-level Dockerfile"
        );
    }
    for (name, service) in &services {
        if !is_agora(name) {
            assert!(service.get("build").is_none(), "compose.yml: {name} runs an official image, built nowhere here");
        }
    }
}

#[test]
fn every_container_has_a_healthcheck() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let check = service.get("healthcheck").unwrap_or_else(|| panic!("compose.yml: {name} has no healthcheck"));
        assert_ne!(
            check.get("disable").and_then(Value::as_bool),
            Some(true),
            "compose.yml: {name}'s healthcheck is disabled"
        );
        let test = words(check.get("test").unwrap_or_else(|| panic!("compose.yml: {name}'s healthcheck has no test")));
        assert!(test.first().is_some_and(|t| t != "NONE"), "compose.yml: {name}'s healthcheck tests nothing");
        if is_agora(&name) {
            let port = listen(&name, &container_config(&name, service)).port();
            let expected = format!("http://127.0.0.1:{port}/ready");
            assert_eq!(
                test.get(..2),
                Some(&["CMD".to_string(), "agora".to_string()][..]),
                "compose.yml: {name}'s healthcheck runs the binary: [\"CMD\", \"agora\", \"health\", {expected:?}]"
            );
            let cli = Cli::try_parse_from(&test[1..])
                .unwrap_or_else(|e| panic!("compose.yml: {name}'s healthcheck {test:?} is not one agora accepts: {e}"));
            match cli.command {
                Some(Command::Health { url }) => {
                    assert_eq!(url, expected, "compose.yml: {name}'s healthcheck asks its own /ready")
                }
                other => panic!("compose.yml: {name}'s healthcheck must be `agora health {expected}`, not {other:?}"),
            }
        }
    }
}

#[test]
fn each_service_is_configured_for_its_servers_and_the_services_it_calls() {
    let compose = compose();
    let services = services(&compose);
    let configs: BTreeMap<String, Config> = agora_services()
        .into_iter()
        .filter_map(|name| services.get(&name).map(|s| (name.clone(), container_config(&name, s))))
        .collect();
    assert_eq!(configs.len(), 4, "compose.yml runs the four services");
    for (name, config) in &configs {
        let address = listen(name, config);
        assert!(
            address.ip().is_unspecified(),
            "compose.yml: {name} listens on {address}: other containers reach it only on 0.0.0.0 \
             ({})",
            env_var(&format!("{name}.listen"))
        );
        for key in needs(name) {
            let value = setting(config, key).unwrap_or_else(|| {
                panic!("compose.yml: {name} needs {} (unset, {key} is in memory or unreachable)", env_var(key))
            });
            for (host, port) in endpoints(&value) {
                assert!(services.contains_key(&host), "compose.yml: {name}'s {key} names {host}, which is no service");
                let Some(target) = configs.get(&host) else { continue };
                let section = key.split('.').next().unwrap_or_default();
                assert_eq!(host, section, "compose.yml: {name}'s {key} reaches the {section} service");
                let expected = listen(&host, target).port();
                assert_eq!(port, Some(expected), "compose.yml: {name}'s {key} reaches {host} on its port {expected}");
            }
        }
    }
    let carts = &configs["carts"];
    assert!(
        !carts.carts.consumer_instance_id.is_empty(),
        "compose.yml: carts sets AGORA_CARTS__CONSUMER_INSTANCE_ID (static group membership: a restarted \
         process takes its partitions back at once)"
    );
}

#[test]
fn services_start_only_once_what_they_need_is_healthy() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in &services {
        for (dependency, condition) in depends_on(service) {
            assert!(services.contains_key(&dependency), "compose.yml: {name} depends on {dependency}, no service");
            assert_eq!(
                condition, "service_healthy",
                "compose.yml: {name} depends on {dependency}: `condition: service_healthy`, so it starts only \
                 once {dependency} is healthy"
            );
        }
    }
    for (name, expected) in WAITS_FOR {
        let service = services.get(name).unwrap_or_else(|| panic!("compose.yml has no {name} service"));
        let dependencies = depends_on(service);
        for dependency in expected {
            assert!(dependencies.contains_key(*dependency), "compose.yml: {name} waits for {dependency} (depends_on)");
        }
        // And every container its configuration names.
        let config = container_config(name, service);
        for key in needs(name) {
            for (host, _) in endpoints(&setting(&config, key).unwrap_or_default()) {
                assert!(
                    dependencies.contains_key(&host),
                    "compose.yml: {name}'s {key} names {host}, which {name} does not wait for (depends_on)"
                );
            }
        }
    }
}

#[test]
fn only_the_gateway_publishes_a_port() {
    let compose = compose();
    for (name, service) in services(&compose) {
        let network = service.get("network_mode").and_then(Value::as_str);
        assert_ne!(network, Some("host"), "compose.yml: {name} on the host's network publishes every port");
        let ports = published(service);
        if name == "gateway" {
            let target = listen(&name, &container_config(&name, service)).port();
            assert_eq!(
                ports,
                [Published { ip: None, host: Some(PUBLIC_PORT), target }],
                "compose.yml: the gateway publishes one port, {PUBLIC_PORT}, to the port it listens on ({target})"
            );
        } else if profiles(service).iter().any(|p| p == OBSERVABILITY) {
            // The operators' UIs: on the host's loopback only.
            for port in &ports {
                assert_eq!(
                    port.ip.as_deref(),
                    Some("127.0.0.1"),
                    "compose.yml: {name} publishes {port:?}: an operator's UI is bound to 127.0.0.1"
                );
            }
        } else {
            assert!(ports.is_empty(), "compose.yml: {name} publishes {ports:?}: only the gateway publishes a port");
        }
    }
}

#[test]
fn secrets_appear_only_as_references() {
    let text = read("compose.yml");
    let compose = compose();
    for (name, service) in services(&compose) {
        for (key, value) in environment(service) {
            let value = value.unwrap_or_default();
            assert!(
                !is_secret_name(&key) || is_bare_reference(&value),
                "compose.yml: {name}'s {key} is a secret: its value is a ${{VAR}} reference without a default, \
                 not {value:?}"
            );
        }
    }
    let mut all = Vec::new();
    strings(&compose, &mut all);
    for s in &all {
        for password in url_passwords(s) {
            assert!(
                is_bare_reference(password),
                "compose.yml: the password in {s:?} is a ${{VAR}} reference without a default, not {password:?}"
            );
        }
    }
    let mut commands = Vec::new();
    lists(&compose, &mut commands);
    for command in &commands {
        for (i, arg) in command.iter().enumerate().filter(|(_, a)| a.starts_with('-')) {
            let value = match arg.split_once('=') {
                Some((flag, value)) => Some(value).filter(|_| is_secret_flag(flag)),
                None => is_secret_flag(arg).then(|| command.get(i + 1).copied().unwrap_or_default()),
            };
            if let Some(value) = value {
                assert!(
                    is_bare_reference(value),
                    "compose.yml: {arg} in {command:?} takes a ${{VAR}} reference without a default, not {value:?}"
                );
            }
        }
    }
    for demo in [DEMO_JWT_SECRET, DEMO_ADMIN_PASSWORD, DEMO_INTERNAL_SECRET] {
        assert!(!text.contains(demo), "compose.yml holds a demo secret, {demo:?}");
    }
    for (key, value) in env_example().set.iter().filter(|(k, v)| is_secret_name(k) && v.len() >= 8) {
        assert!(!text.contains(value.as_str()), "compose.yml holds the placeholder of {key} from .env.example");
    }
}

#[test]
fn env_example_lists_exactly_the_variables_compose_needs() {
    let compose = compose();
    let mut all = Vec::new();
    strings(&compose, &mut all);
    let references = all_references(&all);
    let required: BTreeSet<&str> = references.iter().filter(|r| r.default.is_none()).map(|r| r.name.as_str()).collect();
    let optional: BTreeSet<&str> =
        references.iter().map(|r| r.name.as_str()).filter(|name| !required.contains(name)).collect();
    let example = env_example();
    for name in &required {
        assert!(example.set.contains_key(*name), ".env.example does not set {name}, which compose.yml needs");
    }
    for name in example.set.keys() {
        assert!(
            required.contains(name.as_str()) || optional.contains(name.as_str()),
            ".env.example sets {name}, which compose.yml does not use"
        );
    }
    for name in &example.mentioned {
        assert!(optional.contains(name.as_str()), ".env.example mentions {name}: no optional variable of compose.yml");
    }
    for name in &optional {
        assert!(
            example.set.contains_key(*name) || example.mentioned.contains(*name),
            ".env.example does not mention {name}, an optional variable of compose.yml (as `# {name}=default`)"
        );
    }
}

#[test]
fn infrastructure_runs_official_images_pinned_to_a_version() {
    let compose = compose();
    let mut repositories = BTreeSet::new();
    for (name, service) in services(&compose).into_iter().filter(|(name, _)| !is_agora(name)) {
        let image = service.get("image").and_then(Value::as_str);
        let image = image.unwrap_or_else(|| panic!("compose.yml: {name} names no image"));
        let (repository, tag) = image_parts(image);
        assert!(
            is_pinned(tag.as_deref()),
            "compose.yml: {name}'s image {image} is pinned to a full version tag (not latest, not missing)"
        );
        repositories.insert(repository);
    }
    for expected in INFRASTRUCTURE {
        assert!(repositories.contains(expected), "compose.yml runs no {expected} image: {repositories:?}");
    }
}

#[test]
fn kafka_is_one_kraft_node_that_the_services_reach() {
    let compose = compose();
    let services = services(&compose);
    let (name, kafka) = services
        .iter()
        .find(|(_, s)| s.get("image").and_then(Value::as_str).is_some_and(|i| image_parts(i).0 == "apache/kafka"))
        .expect("compose.yml runs Kafka");
    let env: BTreeMap<String, String> =
        environment(kafka).into_iter().map(|(k, v)| (k, v.unwrap_or_default())).collect();
    let get = |key: &str| env.get(key).unwrap_or_else(|| panic!("compose.yml: {name} sets no {key}")).as_str();
    let roles: BTreeSet<&str> = get("KAFKA_PROCESS_ROLES").split(',').map(str::trim).collect();
    assert_eq!(roles, BTreeSet::from(["broker", "controller"]), "compose.yml: {name} is broker and controller");
    let voter = format!("{}@", get("KAFKA_NODE_ID"));
    assert!(get("KAFKA_CONTROLLER_QUORUM_VOTERS").starts_with(&voter), "compose.yml: {name} votes for itself");
    for key in [
        "KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR",
        "KAFKA_TRANSACTION_STATE_LOG_MIN_ISR",
    ] {
        assert_eq!(get(key), "1", "compose.yml: {name} is a single node: {key}=1");
    }
    assert_eq!(get("KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS"), "0", "compose.yml: {name} lets consumers start at once");
    for key in ["KAFKA_LISTENERS", "KAFKA_CONTROLLER_LISTENER_NAMES", "KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"] {
        get(key);
    }
    let advertised = get("KAFKA_ADVERTISED_LISTENERS");
    for service in agora_services() {
        let config = container_config(&service, services[&service]);
        for (host, port) in endpoints(&setting(&config, "kafka.brokers").unwrap_or_default()) {
            let port = port.unwrap_or_else(|| panic!("compose.yml: {service}'s kafka.brokers names a port"));
            assert!(
                advertised.contains(&format!("//{host}:{port}")),
                "compose.yml: {service} reaches Kafka at {host}:{port}, which {name} does not advertise ({advertised})"
            );
        }
    }
}

#[test]
fn infrastructure_keeps_its_data_in_named_volumes() {
    let compose = compose();
    let declared: BTreeSet<String> = compose
        .get("volumes")
        .and_then(Value::as_mapping)
        .map(|volumes| volumes.keys().filter_map(scalar).collect())
        .unwrap_or_default();
    // The servers of the system; the observability profile's own test checks its mounts.
    let servers = services(&compose).into_iter().filter(|(name, s)| !is_agora(name) && profiles(s).is_empty());
    for (name, service) in servers {
        let volumes = service.get("volumes").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
        assert!(!volumes.is_empty(), "compose.yml: {name} keeps its data in a named volume");
        for volume in volumes {
            let source = match volume {
                Value::Mapping(_) => volume.get("source").and_then(scalar),
                short => scalar(short).and_then(|s| s.split(':').next().map(str::to_string)),
            };
            let source = source.unwrap_or_default();
            assert!(
                declared.contains(&source),
                "compose.yml: {name} mounts {source:?}, not a named volume declared under `volumes`"
            );
        }
    }
}

#[test]
fn agora_services_have_time_to_shut_down_gracefully() {
    let compose = compose();
    let services = services(&compose);
    for name in agora_services() {
        let service = services[&name];
        let config = container_config(&name, service);
        let needed = config.gateway.shutdown_grace_secs as f64 + config.server.drain_delay_ms as f64 / 1000.0;
        // Docker's default is 10 s.
        let grace = service.get("stop_grace_period").and_then(scalar).map_or(10.0, |d| seconds(&d));
        assert!(
            grace > needed,
            "compose.yml: {name}'s stop_grace_period ({grace} s) must exceed the drain delay and the shutdown \
             grace ({needed} s), or Docker kills it mid-drain"
        );
    }
}

#[test]
fn the_dockerfile_builds_a_slim_non_root_image_of_the_binary() {
    let stages = dockerfile();
    assert!(stages.len() >= 2, "Dockerfile: a build stage and a runtime stage, not {}", stages.len());
    let mut names = BTreeSet::new();
    for stage in &stages {
        let from = &stage[0].1;
        let words: Vec<&str> = from.split_whitespace().filter(|w| !w.starts_with("--")).collect();
        let image = words.first().copied().unwrap_or_default();
        if !names.contains(&image.to_lowercase()) {
            let (_, tag) = image_parts(image);
            assert!(is_pinned(tag.as_deref()), "Dockerfile: FROM {image} is pinned to a version tag");
        }
        if let [_, keyword, name] = words.as_slice()
            && keyword.eq_ignore_ascii_case("as")
        {
            names.insert(name.to_lowercase());
        }
    }
    let runs = stages.iter().flatten().filter(|(k, _)| k == "RUN").map(|(_, a)| a.as_str());
    assert!(
        runs.clone().any(|r| r.contains("cargo build") && r.contains("--release") && r.contains("--locked")),
        "Dockerfile: the binary is built with `cargo build --release --locked`"
    );
    assert!(runs.clone().any(|r| r.contains("cargo chef cook")), "Dockerfile: the dependencies are cooked first");

    let last = stages.last().expect("a stage");
    let base = last[0].1.split_whitespace().find(|w| !w.starts_with("--")).unwrap_or_default().to_lowercase();
    let toolchain = last.iter().any(|(k, a)| k == "RUN" && a.contains("cargo "));
    assert!(
        !names.contains(&base) && !toolchain,
        "Dockerfile: the final stage starts from a slim base image, the toolchain left in the build stages"
    );
    let all = |keyword: &str| last.iter().filter(|(k, _)| k == keyword).map(|(_, a)| a.as_str()).collect::<Vec<_>>();
    let user = all("USER").last().copied().unwrap_or_else(|| panic!("Dockerfile: the final stage sets no USER"));
    let user = user.split(':').next().unwrap_or_default();
    assert!(user != "root" && user != "0", "Dockerfile: the final stage runs as a non-root user, not {user}");

    let entrypoint = all("ENTRYPOINT").last().copied().expect("Dockerfile: the final stage has an ENTRYPOINT");
    let entrypoint: Vec<String> = serde_json::from_str(entrypoint)
        .unwrap_or_else(|_| panic!("Dockerfile: ENTRYPOINT in exec form (a JSON list), not {entrypoint}"));
    assert!(
        matches!(entrypoint.as_slice(), [binary] if binary == "agora" || binary == "/usr/local/bin/agora"),
        "Dockerfile: the ENTRYPOINT is the agora binary, not {entrypoint:?}"
    );
    let copies = all("COPY");
    assert!(
        copies.iter().any(|c| c.starts_with("--from=")
            && c.contains("/release/agora ")
            && (c.ends_with(" /usr/local/bin/agora") || c.ends_with(" /usr/local/bin/"))),
        "Dockerfile: the final stage copies the built binary to /usr/local/bin/agora (on PATH): {copies:?}"
    );
    let adapters = Path::new(env!("CARGO_MANIFEST_DIR")).join("adapters");
    for entry in std::fs::read_dir(&adapters).unwrap() {
        let entry = entry.unwrap();
        if entry.path().join("migrations").is_dir() {
            let migrations = format!("adapters/{}/migrations", entry.file_name().to_string_lossy());
            assert!(
                copies.iter().any(|c| c.contains(&migrations)),
                "Dockerfile: the final stage copies {migrations} (to /usr/share/agora/migrations)"
            );
        }
    }
    let exposed: BTreeSet<u16> = all("EXPOSE")
        .iter()
        .flat_map(|e| e.split_whitespace())
        .filter_map(|p| p.split('/').next()?.parse().ok())
        .collect();
    for name in agora_services() {
        let port = listen(&name, &Config::default()).port();
        assert!(exposed.contains(&port), "Dockerfile: EXPOSE {port}, where {name} listens");
    }
}

#[test]
fn the_build_context_leaves_out_secrets_and_build_output() {
    let text = read(".dockerignore");
    let patterns: BTreeSet<&str> =
        text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect();
    for left_out in [".env", "target", ".git", ".data"] {
        assert!(patterns.contains(left_out), ".dockerignore leaves out {left_out}");
    }
    for needed in ["src", "adapters", "fixtures", "tests", "benches", "tools", "Cargo.toml", "Cargo.lock", "*", "."] {
        for pattern in [needed.to_string(), format!("{needed}/"), format!("/{needed}")] {
            assert!(!patterns.contains(pattern.as_str()), ".dockerignore leaves out {pattern}, which the build needs");
        }
    }
}

#[test]
fn the_observability_profile_scrapes_every_service_shows_the_dashboard_and_takes_spans() {
    let compose = compose();
    let services = services(&compose);
    for (name, service) in &services {
        let in_profile = profiles(service).iter().any(|p| p == OBSERVABILITY);
        let observer = OBSERVERS.iter().any(|(n, _)| n == name);
        assert_eq!(
            in_profile, observer,
            "compose.yml: only {OBSERVERS:?} are in the {OBSERVABILITY} profile, not {name}"
        );
        if !observer {
            for dependency in depends_on(service).keys() {
                assert!(
                    !OBSERVERS.iter().any(|(n, _)| n == dependency),
                    "compose.yml: {name} waits for {dependency}, which runs only with --profile {OBSERVABILITY}"
                );
            }
        }
    }
    for (name, repository) in OBSERVERS {
        let service = services.get(name).unwrap_or_else(|| panic!("compose.yml has no {name} service"));
        let image = service.get("image").and_then(Value::as_str).unwrap_or_default();
        assert_eq!(image_parts(image).0, repository, "compose.yml: {name} runs {repository}");
        // Every file it mounts from the repository exists.
        for volume in service.get("volumes").and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default() {
            let source = scalar(volume).and_then(|v| v.split(':').next().map(str::to_string)).unwrap_or_default();
            if let Some(path) = source.strip_prefix("./") {
                let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
                assert!(path.exists(), "compose.yml: {name} mounts {source}, which is not in the repository");
            }
        }
    }
    // Prometheus scrapes each service where compose.yml has it listen.
    let prometheus: Value = serde_norway::from_str(&read("ops/prometheus/prometheus.yml")).unwrap();
    let job = &prometheus["scrape_configs"][0];
    assert_eq!(job["metrics_path"].as_str(), Some("/metrics"));
    let targets: BTreeSet<String> = job["static_configs"]
        .as_sequence()
        .unwrap()
        .iter()
        .flat_map(|c| c["targets"].as_sequence().unwrap().iter().filter_map(scalar))
        .collect();
    let expected: BTreeSet<String> = agora_services()
        .into_iter()
        .map(|name| {
            let port = listen(&name, &container_config(&name, services[&name])).port();
            format!("{name}:{port}")
        })
        .collect();
    assert_eq!(targets, expected, "ops/prometheus/prometheus.yml scrapes every service at its listen port");
    // Grafana reads Prometheus, and its dashboards from where compose.yml mounts them.
    let datasources: Value =
        serde_norway::from_str(&read("ops/grafana/provisioning/datasources/prometheus.yml")).unwrap();
    assert_eq!(datasources["datasources"][0]["url"].as_str(), Some("http://prometheus:9090"));
    let providers: Value = serde_norway::from_str(&read("ops/grafana/provisioning/dashboards/agora.yml")).unwrap();
    let path = providers["providers"][0]["options"]["path"].as_str().unwrap().to_string();
    let grafana = words(services["grafana"].get("volumes").unwrap());
    assert!(
        grafana.contains(&format!("./ops/grafana/dashboards:{path}:ro")),
        "compose.yml: grafana mounts ops/grafana/dashboards at {path}, where its provisioning looks: {grafana:?}"
    );
    // The services send spans only where the operator says (off by default), Jaeger takes OTLP/HTTP.
    for name in agora_services() {
        let config = container_config(&name, services[&name]);
        assert_eq!(
            config.otlp_endpoint(),
            None,
            "compose.yml: {name} exports spans only when AGORA_OTLP_ENDPOINT is set"
        );
        let env = environment(services[&name]);
        let endpoint = env.get("AGORA_TELEMETRY__OTLP_ENDPOINT").cloned().flatten().unwrap_or_default();
        assert!(
            references(&endpoint).iter().any(|(_, r)| r.name == "AGORA_OTLP_ENDPOINT"),
            "compose.yml: {name} takes telemetry.otlp_endpoint from AGORA_OTLP_ENDPOINT"
        );
    }
    assert!(
        words(services["jaeger"].get("expose").unwrap()).contains(&"4318".to_string()),
        "jaeger takes OTLP/HTTP on 4318"
    );
}
