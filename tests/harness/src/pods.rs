//! What a test needs to check pods on the real node: wait for Ready, read logs, exec, reach a
//! port from the test process, delete a pod and wait for its replacement.
//!
//! Every wait has a timeout and fails with what the pod and its Events say (waiting reasons,
//! restarts, probe failures), so a red test names its cause.

use std::time::{Duration, Instant};

use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::{Event, Pod, ServiceAccount};
use kube::api::{AttachParams, DeleteParams, ListParams, LogParams};
use kube::{Api, Client, ResourceExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const POLL: Duration = Duration::from_millis(250);

/// Waits until the namespace's `default` ServiceAccount exists: pods are refused before that.
pub async fn wait_for_default_service_account(client: &Client, namespace: &str) {
    let accounts = Api::<ServiceAccount>::namespaced(client.clone(), namespace);
    let started = Instant::now();
    while accounts.get_opt("default").await.ok().flatten().is_none() {
        if started.elapsed() > Duration::from_secs(30) {
            panic!("namespace {namespace} has no default ServiceAccount after 30 s");
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Whether the pod has the condition `Ready=True`.
pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|status| status.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|condition| condition.type_ == "Ready" && condition.status == "True")
        })
}

/// One line per container: state, restarts, last termination; and the pod's Events.
pub async fn describe(client: &Client, namespace: &str, name: &str) -> String {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let mut out = String::new();
    match pods.get_opt(name).await {
        Ok(Some(pod)) => {
            let status = pod.status.clone().unwrap_or_default();
            out.push_str(&format!(
                "pod {namespace}/{name}: phase {:?}, conditions {:?}\n",
                status.phase,
                status
                    .conditions
                    .unwrap_or_default()
                    .iter()
                    .map(|c| format!(
                        "{}={} {}",
                        c.type_,
                        c.status,
                        c.message.clone().unwrap_or_default()
                    ))
                    .collect::<Vec<_>>()
            ));
            for container in status
                .init_container_statuses
                .unwrap_or_default()
                .into_iter()
                .chain(status.container_statuses.unwrap_or_default())
            {
                out.push_str(&format!(
                    "  container {}: ready {}, restarts {}, state {:?}, last {:?}\n",
                    container.name,
                    container.ready,
                    container.restart_count,
                    container.state,
                    container.last_state.and_then(|last| last.terminated),
                ));
            }
        }
        Ok(None) => out.push_str(&format!("pod {namespace}/{name} does not exist\n")),
        Err(error) => out.push_str(&format!("pod {namespace}/{name}: {error}\n")),
    }
    let events = Api::<Event>::namespaced(client.clone(), namespace);
    let selector = format!("involvedObject.name={name}");
    if let Ok(list) = events.list(&ListParams::default().fields(&selector)).await {
        for event in list {
            out.push_str(&format!(
                "  event {} {}: {}\n",
                event.type_.unwrap_or_default(),
                event.reason.unwrap_or_default(),
                event.message.unwrap_or_default()
            ));
        }
    }
    out
}

/// Waits until the pod exists and is Ready; panics with [`describe`] after `timeout`.
pub async fn wait_ready(client: &Client, namespace: &str, name: &str, timeout: Duration) -> Pod {
    wait_ready_where(client, namespace, name, timeout, |_| true).await
}

/// Like [`wait_ready`], for a pod that also satisfies `accept` (e.g. a new uid).
pub async fn wait_ready_where(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
    accept: impl Fn(&Pod) -> bool,
) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        if let Ok(Some(pod)) = pods.get_opt(name).await
            && accept(&pod)
            && is_ready(&pod)
        {
            return pod;
        }
        if started.elapsed() > timeout {
            panic!(
                "pod {namespace}/{name} not Ready after {timeout:?}:\n{}",
                describe(client, namespace, name).await
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// The first pod matching `label_selector`, once one exists and is Ready.
pub async fn wait_ready_selected(
    client: &Client,
    namespace: &str,
    label_selector: &str,
    timeout: Duration,
) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let started = Instant::now();
    loop {
        let list = pods
            .list(&ListParams::default().labels(label_selector))
            .await
            .map(|list| list.items)
            .unwrap_or_default();
        if let Some(pod) = list.iter().find(|pod| is_ready(pod)) {
            return pod.clone();
        }
        if started.elapsed() > timeout {
            let mut detail = String::new();
            for pod in &list {
                detail.push_str(&describe(client, namespace, &pod.name_any()).await);
            }
            panic!(
                "no Ready pod matching {label_selector} in {namespace} after {timeout:?} \
                 ({} found):\n{detail}",
                list.len()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A container's log as the kubelet has it.
pub async fn logs(client: &Client, namespace: &str, pod: &str, container: &str) -> String {
    Api::<Pod>::namespaced(client.clone(), namespace)
        .logs(
            pod,
            &LogParams {
                container: Some(container.to_owned()),
                ..LogParams::default()
            },
        )
        .await
        .unwrap_or_else(|error| panic!("logs of {namespace}/{pod}/{container}: {error}"))
}

/// Follows a container's log until a line satisfies `matches`; returns that line.
pub async fn wait_for_log_line(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    timeout: Duration,
    matches: impl Fn(&str) -> bool,
) -> String {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = LogParams {
        container: Some(container.to_owned()),
        follow: true,
        ..LogParams::default()
    };
    let search = async {
        let mut lines = api
            .log_stream(pod, &params)
            .await
            .unwrap_or_else(|error| panic!("log stream of {namespace}/{pod}: {error}"))
            .lines();
        while let Some(line) = lines.try_next().await.ok().flatten() {
            if matches(&line) {
                return Some(line);
            }
        }
        None
    };
    match tokio::time::timeout(timeout, search).await {
        Ok(Some(line)) => line,
        _ => panic!(
            "no matching log line from {namespace}/{pod}/{container} within {timeout:?}; log:\n{}",
            logs(client, namespace, pod, container).await
        ),
    }
}

/// What an exec returned.
#[derive(Debug)]
pub struct ExecOutput {
    pub stdout: String,
    pub stderr: String,
    /// `Success`, or the failure the kubelet reported (non-zero exit, not found, ...).
    pub status: String,
}

impl ExecOutput {
    pub fn success(&self) -> bool {
        self.status == "Success"
    }
}

/// Runs `command` in a container (no shell: the first word is the executable).
pub async fn exec(
    client: &Client,
    namespace: &str,
    pod: &str,
    container: &str,
    command: &[&str],
) -> ExecOutput {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let params = AttachParams::default()
        .container(container)
        .stdin(false)
        .stdout(true)
        .stderr(true);
    let mut attached = api
        .exec(pod, command.iter().copied(), &params)
        .await
        .unwrap_or_else(|error| panic!("exec {command:?} in {namespace}/{pod}: {error}"));
    let mut stdout = String::new();
    let mut stderr = String::new();
    let status_future = attached.take_status().expect("exec status");
    let (mut out, mut err) = (
        attached.stdout().expect("exec stdout"),
        attached.stderr().expect("exec stderr"),
    );
    let (read_out, read_err) = tokio::join!(
        out.read_to_string(&mut stdout),
        err.read_to_string(&mut stderr)
    );
    read_out
        .and(read_err)
        .unwrap_or_else(|error| panic!("exec output: {error}"));
    let status = status_future
        .await
        .map(|status| {
            let text = status.status.clone().unwrap_or_default();
            if text == "Success" {
                text
            } else {
                format!("{text}: {}", status.message.unwrap_or_default())
            }
        })
        .unwrap_or_else(|| "no status".into());
    let _ = attached.join().await;
    ExecOutput {
        stdout,
        stderr,
        status,
    }
}

/// An HTTP/1.0 request to a pod's port through the API's port-forward (as `kubectl
/// port-forward` does), from the test process. Returns the status line's code and the body.
pub async fn http_via_port_forward(
    client: &Client,
    namespace: &str,
    pod: &str,
    port: u16,
    method: &str,
    path: &str,
    body: &[u8],
) -> (u16, String) {
    let api = Api::<Pod>::namespaced(client.clone(), namespace);
    let mut forwarder = api
        .portforward(pod, &[port])
        .await
        .unwrap_or_else(|error| panic!("port-forward to {namespace}/{pod}:{port}: {error}"));
    let mut stream = forwarder.take_stream(port).expect("a port-forward stream");
    let request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {pod}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("write request");
    stream.write_all(body).await.expect("write body");
    let mut response = Vec::new();
    stream
        .read_to_end(&mut response)
        .await
        .expect("read response");
    drop(stream);
    let _ = forwarder.join().await;
    let text = String::from_utf8_lossy(&response).into_owned();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    (code, body)
}

/// Deletes a pod and waits until a pod of the same name (a StatefulSet's replacement) with a
/// different uid is Ready; returns it.
pub async fn kill_and_wait_replacement(
    client: &Client,
    namespace: &str,
    name: &str,
    timeout: Duration,
) -> Pod {
    let pods = Api::<Pod>::namespaced(client.clone(), namespace);
    let old_uid = pods
        .get(name)
        .await
        .unwrap_or_else(|error| panic!("pod {namespace}/{name}: {error}"))
        .uid();
    pods.delete(name, &DeleteParams::default())
        .await
        .unwrap_or_else(|error| panic!("delete pod {namespace}/{name}: {error}"));
    wait_ready_where(client, namespace, name, timeout, |pod| pod.uid() != old_uid).await
}
