//! Container images without a registry or a container engine: an OCI image layout written
//! directly from files built on this machine, then imported into the node's containerd under
//! its real reference.
//!
//! An image is described by the final stage of a `Containerfile`, the same file users build with
//! docker, podman or buildah. Only the instructions a `FROM scratch` stage of static binaries
//! needs are understood (`FROM scratch`, `COPY`, `USER`, `ENTRYPOINT`, `CMD`, `ENV`, `WORKDIR`,
//! `LABEL`, `EXPOSE`); anything else is an error naming the line, so an image the suite cannot
//! build faithfully never passes for one it can. `COPY --from=<stage>` reads from a directory the
//! caller maps to that stage (where the suite built the same files the stage would).
//!
//! The layout (OCI image-spec v1.1): one uncompressed layer, a config, a manifest, and an
//! `index.json` whose manifest carries `io.containerd.image.name` (the full reference
//! containerd imports it as) and `org.opencontainers.image.ref.name` (the tag). Every timestamp
//! is zero and every owner root, so the same inputs give the same digest.

use std::collections::BTreeMap;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";
const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";

/// Why an image could not be described or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{file}:{line}: {message}")]
    Containerfile {
        file: PathBuf,
        line: usize,
        message: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("image reference {0:?} is not <repository>:<tag>")]
    Reference(String),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ImageError + '_ {
    move |source| ImageError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One file of the image's single layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayerFile {
    /// Absolute path inside the image.
    pub path: String,
    /// Where its bytes come from on this machine.
    pub source: PathBuf,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
}

/// What a Containerfile's final stage says, ready to be written as an OCI layout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ImageSpec {
    pub files: Vec<LayerFile>,
    pub user: Option<String>,
    pub entrypoint: Option<Vec<String>>,
    pub cmd: Option<Vec<String>>,
    pub env: Vec<(String, String)>,
    pub working_dir: Option<String>,
    pub labels: BTreeMap<String, String>,
    pub exposed_ports: Vec<String>,
}

impl ImageSpec {
    /// Reads the last stage of `containerfile`; `stages` maps a `COPY --from=<name>` to the
    /// directory holding what that stage built, and `context` is the build context of plain
    /// `COPY`. `args` gives the values of `ARG`s used as `${NAME}`.
    pub fn from_containerfile(
        containerfile: &Path,
        context: &Path,
        stages: &Stages,
        args: &BTreeMap<String, String>,
    ) -> Result<ImageSpec, ImageError> {
        let text = std::fs::read_to_string(containerfile).map_err(io_error(containerfile))?;
        parse_final_stage(&text, containerfile, context, stages, args)
    }
}

/// Where some files of a build stage are on this machine: paths under `prefix` in the stage are
/// read from `dir`.
#[derive(Clone, Debug)]
pub struct StageRoot {
    pub prefix: String,
    pub dir: PathBuf,
}

impl StageRoot {
    pub fn new(prefix: &str, dir: &Path) -> StageRoot {
        StageRoot {
            prefix: prefix.to_owned(),
            dir: dir.to_owned(),
        }
    }
}

/// The stages a final stage may `COPY --from`, each with the places its files are found.
pub type Stages = BTreeMap<String, Vec<StageRoot>>;

/// Joins continuation lines and drops comments, keeping each instruction's first line number.
fn instructions(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut pending: Option<(usize, String)> = None;
    for (index, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if pending.is_none() && (line.is_empty() || line.starts_with('#')) {
            continue;
        }
        let (start, mut joined) = pending.take().unwrap_or((index + 1, String::new()));
        if let Some(continued) = line.strip_suffix('\\') {
            joined.push_str(continued);
            joined.push(' ');
            pending = Some((start, joined));
        } else {
            joined.push_str(line);
            out.push((start, joined));
        }
    }
    if let Some(last) = pending {
        out.push(last);
    }
    out
}

fn substitute(value: &str, args: &BTreeMap<String, String>) -> String {
    let mut out = value.to_owned();
    for (name, arg) in args {
        out = out.replace(&format!("${{{name}}}"), arg);
    }
    out
}

fn parse_final_stage(
    text: &str,
    file: &Path,
    context: &Path,
    stages: &Stages,
    args: &BTreeMap<String, String>,
) -> Result<ImageSpec, ImageError> {
    let all = instructions(text);
    let last_from = all
        .iter()
        .rposition(|(_, line)| keyword(line).0.eq_ignore_ascii_case("FROM"))
        .ok_or_else(|| ImageError::Containerfile {
            file: file.to_owned(),
            line: 1,
            message: "no FROM instruction".into(),
        })?;
    let mut spec = ImageSpec::default();
    for (line_number, line) in &all[last_from..] {
        let error = |message: String| ImageError::Containerfile {
            file: file.to_owned(),
            line: *line_number,
            message,
        };
        let (word, rest) = keyword(line);
        let rest = substitute(rest, args);
        match word.to_ascii_uppercase().as_str() {
            "FROM" => {
                let base = rest.split_whitespace().next().unwrap_or_default();
                if base != "scratch" {
                    return Err(error(format!(
                        "the final stage is built FROM {base:?}; only FROM scratch can be built \
                         without a registry"
                    )));
                }
            }
            "ARG" => {}
            "COPY" => spec
                .files
                .extend(parse_copy(&rest, context, stages).map_err(error)?),
            "USER" => spec.user = Some(rest.trim().to_owned()),
            "ENTRYPOINT" => spec.entrypoint = Some(exec_form(&rest).map_err(error)?),
            "CMD" => spec.cmd = Some(exec_form(&rest).map_err(error)?),
            "WORKDIR" => spec.working_dir = Some(rest.trim().to_owned()),
            "ENV" => {
                let (name, value) = rest
                    .trim()
                    .split_once('=')
                    .ok_or_else(|| error("ENV takes NAME=value".into()))?;
                spec.env.push((name.to_owned(), unquote(value)));
            }
            "LABEL" => {
                for pair in crate::split_words(&rest) {
                    let (name, value) = pair
                        .split_once('=')
                        .ok_or_else(|| error(format!("LABEL {pair:?} is not name=value")))?;
                    spec.labels.insert(name.to_owned(), unquote(value));
                }
            }
            "EXPOSE" => spec
                .exposed_ports
                .extend(rest.split_whitespace().map(|port| {
                    if port.contains('/') {
                        port.to_owned()
                    } else {
                        format!("{port}/tcp")
                    }
                })),
            other => {
                return Err(error(format!(
                    "{other} is not supported in the final stage (it needs a container engine); \
                     move it to a build stage"
                )));
            }
        }
    }
    Ok(spec)
}

fn keyword(line: &str) -> (&str, &str) {
    let line = line.trim();
    match line.find(char::is_whitespace) {
        Some(at) => (&line[..at], line[at..].trim()),
        None => (line, ""),
    }
}

fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('"')
        .and_then(|v| v.strip_suffix('"'))
        .unwrap_or(value)
        .to_owned()
}

/// The JSON ("exec") form only: the shell form would need a shell in the image.
fn exec_form(text: &str) -> Result<Vec<String>, String> {
    serde_json::from_str::<Vec<String>>(text.trim()).map_err(|_| {
        format!(
            "{text:?} is not the exec form [\"binary\", \"arg\"]; the shell form needs a shell in \
             the image"
        )
    })
}

fn parse_copy(rest: &str, context: &Path, stages: &Stages) -> Result<Vec<LayerFile>, String> {
    let mut words = crate::split_words(rest);
    let mut from = None;
    let mut mode = None;
    let mut owner = (0, 0);
    while words.first().is_some_and(|word| word.starts_with("--")) {
        let flag = words.remove(0);
        if let Some(stage) = flag.strip_prefix("--from=") {
            from = Some(stage.to_owned());
        } else if let Some(chmod) = flag.strip_prefix("--chmod=") {
            mode = Some(
                u32::from_str_radix(chmod, 8)
                    .map_err(|_| format!("--chmod={chmod} is not an octal mode"))?,
            );
        } else if let Some(chown) = flag.strip_prefix("--chown=") {
            let (uid, gid) = chown.split_once(':').unwrap_or((chown, chown));
            let number = |id: &str| {
                id.parse::<u64>()
                    .map_err(|_| format!("--chown={chown}: only numeric ids can be resolved"))
            };
            owner = (number(uid)?, number(gid)?);
        } else {
            return Err(format!("COPY {flag} is not supported"));
        }
    }
    if words.len() < 2 {
        return Err("COPY needs a source and a destination".into());
    }
    let destination = words.pop().expect("checked above");
    let many = words.len() > 1 || destination.ends_with('/');
    words
        .iter()
        .map(|source| {
            let local = match &from {
                Some(stage) => {
                    let roots = stages.get(stage).ok_or_else(|| {
                        format!("COPY --from={stage}: the suite has no build output for stage {stage:?}")
                    })?;
                    let (root, relative) = roots
                        .iter()
                        .find_map(|root| Some((root, source.strip_prefix(&root.prefix)?)))
                        .ok_or_else(|| {
                            let prefixes: Vec<&str> = roots.iter().map(|root| root.prefix.as_str()).collect();
                            format!(
                                "COPY --from={stage} {source}: the suite maps only paths under {prefixes:?} of that stage"
                            )
                        })?;
                    root.dir.join(relative.trim_start_matches('/'))
                }
                None => context.join(source),
            };
            let metadata = std::fs::metadata(&local)
                .map_err(|e| format!("COPY {source}: {}: {e}", local.display()))?;
            if !metadata.is_file() {
                return Err(format!("COPY {source}: only files are supported, {} is not one", local.display()));
            }
            let path = if many {
                let name = Path::new(source).file_name().and_then(|n| n.to_str()).unwrap_or(source);
                format!("{}/{name}", destination.trim_end_matches('/'))
            } else {
                destination.clone()
            };
            use std::os::unix::fs::PermissionsExt;
            Ok(LayerFile {
                path,
                source: local,
                mode: mode.unwrap_or(metadata.permissions().mode() & 0o7777),
                uid: owner.0,
                gid: owner.1,
            })
        })
        .collect()
}

/// An OCI image layout, written as a tar file ready for `ctr images import`.
#[derive(Clone, Debug)]
pub struct ImageTar {
    pub reference: String,
    pub path: PathBuf,
    /// `sha256:<hex>` of the manifest: the image's identity.
    pub manifest_digest: String,
}

fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Appends one regular file or directory entry with fixed metadata.
fn append_entry(
    builder: &mut tar::Builder<impl Write>,
    path: &str,
    mode: u32,
    owner: (u64, u64),
    contents: Option<&[u8]>,
) -> io::Result<()> {
    let mut header = tar::Header::new_ustar();
    header.set_mtime(0);
    header.set_uid(owner.0);
    header.set_gid(owner.1);
    header.set_mode(mode);
    match contents {
        Some(bytes) => {
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(bytes.len() as u64);
            builder.append_data(&mut header, path, bytes)
        }
        None => {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, format!("{path}/"), io::empty())
        }
    }
}

/// The layer tar: every parent directory (0755, root) once, then the files, in path order.
fn layer_tar(files: &[LayerFile]) -> Result<Vec<u8>, ImageError> {
    let mut sorted = files.to_vec();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut builder = tar::Builder::new(Vec::new());
    let mut directories = std::collections::BTreeSet::new();
    for file in &sorted {
        let relative = file.path.trim_start_matches('/');
        let mut parent = Path::new(relative).parent();
        let mut missing = Vec::new();
        while let Some(dir) = parent.filter(|dir| !dir.as_os_str().is_empty()) {
            if directories.insert(dir.to_owned()) {
                missing.push(dir.to_owned());
            }
            parent = dir.parent();
        }
        for dir in missing.iter().rev() {
            append_entry(&mut builder, &dir.to_string_lossy(), 0o755, (0, 0), None)
                .map_err(io_error(&file.source))?;
        }
        let bytes = std::fs::read(&file.source).map_err(io_error(&file.source))?;
        append_entry(
            &mut builder,
            relative,
            file.mode,
            (file.uid, file.gid),
            Some(&bytes),
        )
        .map_err(io_error(&file.source))?;
    }
    builder
        .into_inner()
        .map_err(io_error(Path::new("<layer tar>")))
}

fn config_json(spec: &ImageSpec, layer_digest: &str) -> Value {
    let mut config = serde_json::Map::new();
    if let Some(user) = &spec.user {
        config.insert("User".into(), json!(user));
    }
    if let Some(entrypoint) = &spec.entrypoint {
        config.insert("Entrypoint".into(), json!(entrypoint));
    }
    if let Some(cmd) = &spec.cmd {
        config.insert("Cmd".into(), json!(cmd));
    }
    if !spec.env.is_empty() {
        let env: Vec<String> = spec.env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        config.insert("Env".into(), json!(env));
    }
    if let Some(dir) = &spec.working_dir {
        config.insert("WorkingDir".into(), json!(dir));
    }
    if !spec.labels.is_empty() {
        config.insert("Labels".into(), json!(spec.labels));
    }
    if !spec.exposed_ports.is_empty() {
        let ports: serde_json::Map<String, Value> = spec
            .exposed_ports
            .iter()
            .map(|port| (port.clone(), json!({})))
            .collect();
        config.insert("ExposedPorts".into(), Value::Object(ports));
    }
    json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "1970-01-01T00:00:00Z",
        "config": config,
        "rootfs": { "type": "layers", "diff_ids": [layer_digest] },
        "history": [{ "created": "1970-01-01T00:00:00Z", "created_by": "opstack-test-harness" }],
    })
}

/// Writes `spec` as an OCI image-layout tar at `out` under `reference` (`repository:tag`).
pub fn write_image_tar(
    spec: &ImageSpec,
    reference: &str,
    out: &Path,
) -> Result<ImageTar, ImageError> {
    let tag = reference
        .rsplit_once(':')
        .filter(|(repository, tag)| !repository.is_empty() && !tag.contains('/'))
        .map(|(_, tag)| tag.to_owned())
        .ok_or_else(|| ImageError::Reference(reference.to_owned()))?;
    let layer = layer_tar(&spec.files)?;
    let layer_digest = sha256(&layer);
    let config = serde_json::to_vec(&config_json(spec, &layer_digest)).expect("JSON");
    let config_digest = sha256(&config);
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": { "mediaType": CONFIG_MEDIA_TYPE, "digest": config_digest, "size": config.len() },
        "layers": [{ "mediaType": LAYER_MEDIA_TYPE, "digest": layer_digest, "size": layer.len() }],
    }))
    .expect("JSON");
    let manifest_digest = sha256(&manifest);
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": INDEX_MEDIA_TYPE,
        "manifests": [{
            "mediaType": MANIFEST_MEDIA_TYPE,
            "digest": manifest_digest,
            "size": manifest.len(),
            "annotations": {
                "io.containerd.image.name": reference,
                "org.opencontainers.image.ref.name": tag,
            },
        }],
    }))
    .expect("JSON");

    if let Some(parent) = out.parent() {
        std::fs::create_dir_all(parent).map_err(io_error(parent))?;
    }
    let partial = out.with_extension("partial");
    let file = std::fs::File::create(&partial).map_err(io_error(&partial))?;
    let mut builder = tar::Builder::new(io::BufWriter::new(file));
    let blob = |digest: &str| format!("blobs/sha256/{}", digest.trim_start_matches("sha256:"));
    let write = |builder: &mut tar::Builder<_>| -> io::Result<()> {
        append_entry(builder, "blobs", 0o755, (0, 0), None)?;
        append_entry(builder, "blobs/sha256", 0o755, (0, 0), None)?;
        append_entry(
            builder,
            "oci-layout",
            0o644,
            (0, 0),
            Some(br#"{"imageLayoutVersion":"1.0.0"}"#),
        )?;
        append_entry(builder, &blob(&layer_digest), 0o644, (0, 0), Some(&layer))?;
        append_entry(builder, &blob(&config_digest), 0o644, (0, 0), Some(&config))?;
        append_entry(
            builder,
            &blob(&manifest_digest),
            0o644,
            (0, 0),
            Some(&manifest),
        )?;
        append_entry(builder, "index.json", 0o644, (0, 0), Some(&index))?;
        builder.finish()
    };
    write(&mut builder).map_err(io_error(&partial))?;
    drop(builder);
    std::fs::rename(&partial, out).map_err(io_error(out))?;
    Ok(ImageTar {
        reference: reference.to_owned(),
        path: out.to_owned(),
        manifest_digest,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("opstack-image-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn final_stage_only_and_exec_form_only() {
        let dir = temp_dir("parse");
        std::fs::write(dir.join("tool"), b"binary").unwrap();
        let stages = Stages::from([("build".to_owned(), vec![StageRoot::new("/out", &dir)])]);
        let text = "FROM rust AS build\nRUN make\n\nFROM scratch\n# comment\nCOPY --from=build --chmod=0555 /out/tool /usr/local/bin/tool\nUSER 65532:65532\nENV PATH=/usr/local/bin\nEXPOSE 8080\nENTRYPOINT [\"tool\"]\nCMD [\"serve\", \\\n  \"--port=8080\"]\n";
        let spec = parse_final_stage(
            text,
            Path::new("Containerfile"),
            &dir,
            &stages,
            &BTreeMap::new(),
        )
        .unwrap();
        assert_eq!(spec.files.len(), 1);
        assert_eq!(spec.files[0].path, "/usr/local/bin/tool");
        assert_eq!(spec.files[0].mode, 0o555);
        assert_eq!(spec.user.as_deref(), Some("65532:65532"));
        assert_eq!(
            spec.cmd,
            Some(vec!["serve".to_owned(), "--port=8080".to_owned()])
        );
        assert_eq!(spec.exposed_ports, vec!["8080/tcp"]);

        let shell_form = "FROM scratch\nCMD serve --port=8080\n";
        let error = parse_final_stage(shell_form, Path::new("C"), &dir, &stages, &BTreeMap::new())
            .unwrap_err();
        assert!(error.to_string().contains("C:2: "), "{error}");
        let run = "FROM scratch\nRUN true\n";
        assert!(parse_final_stage(run, Path::new("C"), &dir, &stages, &BTreeMap::new()).is_err());
        let base = "FROM debian\n";
        assert!(parse_final_stage(base, Path::new("C"), &dir, &stages, &BTreeMap::new()).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn same_inputs_give_the_same_image_digest() {
        let dir = temp_dir("digest");
        std::fs::write(dir.join("tool"), b"binary").unwrap();
        let spec = ImageSpec {
            files: vec![LayerFile {
                path: "/usr/local/bin/tool".into(),
                source: dir.join("tool"),
                mode: 0o755,
                uid: 0,
                gid: 0,
            }],
            entrypoint: Some(vec!["tool".into()]),
            ..ImageSpec::default()
        };
        let first = write_image_tar(&spec, "example.test/tool:v1", &dir.join("a.tar")).unwrap();
        let second = write_image_tar(&spec, "example.test/tool:v1", &dir.join("b.tar")).unwrap();
        assert_eq!(first.manifest_digest, second.manifest_digest);
        assert_eq!(
            std::fs::read(&first.path).unwrap(),
            std::fs::read(&second.path).unwrap()
        );
        assert!(write_image_tar(&spec, "no-tag", &dir.join("c.tar")).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }
}
