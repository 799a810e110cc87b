//! The pod-mode executor over a mocked HTTP layer (`tower-test` under `kube::Client`).
//!
//! A real API server cannot be made to drop a watch, answer `410 Gone`, `429` or `5xx`, or be
//! slow on demand, so these tests script the server's answers instead: a watch whose response
//! ends (the watcher resumes from the last resource version), a watch told `410 Gone` (it lists
//! again), throttling and server errors on create, delete and list (transient `Unavailable`
//! errors), not-found and conflicts, and answers that come late. The tests against a real API
//! server are `tests/apiserver.rs` and `tests/conformance.rs`.
//!
//! Every test runs on tokio's paused clock: the watcher's backoff after an error and the
//! mock's delays pass at once when nothing else can run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use batch_core::executor::{
    Error, ErrorKind, Executor, JobRef, LabelSelector, PodRequest, WatchEvent, WatchStream,
};
use batch_core::job::PodPhase;
use batch_executor_k8s::K8sExecutor;
use futures_util::StreamExt;
use http::{Method, Request, Response};
use kube::client::Body;
use serde_json::{Value, json};
use tower_test::mock::{self, Handle, SendResponse};

type ApiHandle = Handle<Request<Body>, Response<Body>>;
type Reply = SendResponse<Response<Body>>;

const NAMESPACE: &str = "jobs";
const PODS: &str = "/api/v1/namespaces/jobs/pods";
const JOB_LABEL: &str = "batch.kubernetes.io/job-name";

/// How long a test waits for a request or a watch item before it fails (on the paused clock,
/// this passes at once when nothing else can run: a hung test fails instead of hanging).
const GUARD: Duration = Duration::from_secs(3600);

/// How late the "slow" answers come (tokio time; no real time passes on the paused clock).
const SLOW: Duration = Duration::from_secs(20);

// ----- the mocked server -----

/// A request as the mocked server saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Seen {
    method: Method,
    path: String,
    query: BTreeMap<String, String>,
}

impl Seen {
    fn of(request: &Request<Body>) -> Seen {
        let query = request
            .uri()
            .query()
            .unwrap_or_default()
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect();
        Seen {
            method: request.method().clone(),
            path: request.uri().path().to_owned(),
            query,
        }
    }

    /// The query's parameters, sorted by name.
    fn query_pairs(&self) -> Vec<(&str, &str)> {
        self.query
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }

    /// A list of the job's pods as kube's watcher makes it: the most recent version (no
    /// `resourceVersion`: read from etcd, not the watch cache), in pages of 500.
    fn assert_watcher_list(&self) {
        assert_eq!(self.method, Method::GET, "{self:?}");
        assert_eq!(self.path, PODS, "{self:?}");
        assert_eq!(
            self.query_pairs(),
            [
                ("labelSelector", "batch.kubernetes.io/job-name=pi"),
                ("limit", "500")
            ],
            "a list, not a watch: {self:?}"
        );
    }

    /// A watch of the job's pods from `resource_version`, as kube's watcher makes it: with
    /// bookmarks, for at most 290 s (then the watcher watches again).
    fn assert_watch_from(&self, resource_version: &str) {
        assert_eq!(self.method, Method::GET, "{self:?}");
        assert_eq!(self.path, PODS, "{self:?}");
        assert_eq!(
            self.query_pairs(),
            [
                ("allowWatchBookmarks", "true"),
                ("labelSelector", "batch.kubernetes.io/job-name=pi"),
                ("resourceVersion", resource_version),
                ("timeoutSeconds", "290"),
                ("watch", "true"),
            ],
            "a watch from {resource_version}: {self:?}"
        );
    }
}

/// `application/x-www-form-urlencoded` decoding (`+` is a space, `%XX` a byte).
fn decode(s: &str) -> String {
    let mut out = Vec::with_capacity(s.len());
    let mut bytes = s.bytes();
    while let Some(b) = bytes.next() {
        match b {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = [bytes.next().unwrap(), bytes.next().unwrap()];
                let hex = std::str::from_utf8(&hex).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
            }
            b => out.push(b),
        }
    }
    String::from_utf8(out).unwrap()
}

/// The next request the client sends, and the means to answer it.
async fn next_request(handle: &mut ApiHandle) -> (Seen, Reply) {
    let (request, reply) = tokio::time::timeout(GUARD, handle.next_request())
        .await
        .expect("no request came")
        .expect("the client is gone");
    (Seen::of(&request), reply)
}

/// A server that answers the client's next requests with `responses`, one each, in order;
/// its task returns what it was asked (and the handle, which keeps the mock alive).
fn serve_in_order(
    mut handle: ApiHandle,
    responses: Vec<Response<Body>>,
) -> tokio::task::JoinHandle<(Vec<Seen>, ApiHandle)> {
    tokio::spawn(async move {
        let mut seen = Vec::new();
        for response in responses {
            let (request, reply) = next_request(&mut handle).await;
            seen.push(request);
            reply.send_response(response);
        }
        (seen, handle)
    })
}

fn json_response(status: u16, body: &Value) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// An error answer as the API server gives it: a `Status` object.
fn status_response(code: u16, reason: &str, message: &str) -> Response<Body> {
    json_response(
        code,
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }),
    )
}

/// An error answer as a proxy or load balancer in front of the API server gives it.
fn text_response(code: u16, text: &str) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "text/plain")
        .body(Body::from(text.as_bytes().to_vec()))
        .unwrap()
}

/// A watch answer: the events, one JSON object a line; the response (the watch) ends after
/// the last one.
fn watch_response(events: &[Value]) -> Response<Body> {
    let mut body = Vec::new();
    for event in events {
        body.extend(serde_json::to_vec(event).unwrap());
        body.push(b'\n');
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

fn version_info() -> Value {
    json!({
        "major": "1",
        "minor": "33",
        "gitVersion": "v1.33.0",
        "gitCommit": "60a317eadfcb839692a68eab88b2096f4d708f4f",
        "gitTreeState": "clean",
        "buildDate": "2025-04-23T13:07:51Z",
        "goVersion": "go1.24.2",
        "compiler": "gc",
        "platform": "linux/amd64",
    })
}

/// A pod of the job `pi` in `phase`, at `resource_version`.
fn pod(name: &str, phase: &str, resource_version: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "uid": format!("{name}-uid"),
            "resourceVersion": resource_version,
            "labels": { JOB_LABEL: "pi" },
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{ "name": "main", "image": "busybox" }],
        },
        "status": { "phase": phase },
    })
}

fn pod_list(resource_version: &str, items: &[Value]) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "PodList",
        "metadata": { "resourceVersion": resource_version },
        "items": items,
    })
}

fn event(kind: &str, object: &Value) -> Value {
    json!({ "type": kind, "object": object })
}

/// The `ERROR` event an API server sends on a watch from a compacted resource version.
fn gone_event(resource_version: &str) -> Value {
    event(
        "ERROR",
        &json!({
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": format!("too old resource version: {resource_version} (150)"),
            "reason": "Expired",
            "code": 410,
        }),
    )
}

/// An executor over a mocked server, the server's handle, after answering its `/version`
/// request.
async fn connect() -> (K8sExecutor, ApiHandle) {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let connecting = tokio::spawn(K8sExecutor::from_client(client, NAMESPACE));
    let (seen, reply) = next_request(&mut handle).await;
    assert_eq!((seen.method, seen.path.as_str()), (Method::GET, "/version"));
    reply.send_response(json_response(200, &version_info()));
    // Then it checks the namespace exists (here: the caller may not read namespaces).
    let (seen, reply) = next_request(&mut handle).await;
    assert_eq!(
        (seen.method, seen.path.as_str()),
        (
            Method::GET,
            format!("/api/v1/namespaces/{NAMESPACE}").as_str()
        )
    );
    reply.send_response(status_response(
        403,
        "Forbidden",
        "namespaces is forbidden: User \"batch\" cannot get resource \"namespaces\"",
    ));
    let exec = connecting.await.unwrap().unwrap();
    assert_eq!(exec.server_version().to_string(), "1.33");
    assert_eq!(exec.namespace(), NAMESPACE);
    (exec, handle)
}

fn selector() -> LabelSelector {
    BTreeMap::from([(JOB_LABEL.to_owned(), "pi".to_owned())])
}

fn request(name: &str) -> PodRequest {
    PodRequest {
        name: name.to_owned(),
        job: JobRef {
            namespace: NAMESPACE.to_owned(),
            name: "pi".to_owned(),
            uid: "pi-uid".to_owned(),
        },
        index: None,
        labels: selector(),
        annotations: BTreeMap::new(),
        hostname: None,
        spec: serde_json::from_value(json!({
            "restartPolicy": "Never",
            "containers": [{ "name": "main", "image": "busybox" }],
        }))
        .unwrap(),
    }
}

// ----- calls -----

/// An executor call the mocked server answers.
#[derive(Debug, Clone, Copy)]
enum Call {
    Start,
    Delete,
    List,
}

impl Call {
    const ALL: [Call; 3] = [Call::Start, Call::Delete, Call::List];

    fn operation(self) -> &'static str {
        match self {
            Call::Start => "start",
            Call::Delete => "delete",
            Call::List => "list",
        }
    }

    /// Starts the call; its result without the value (the pods listed are checked elsewhere).
    fn spawn(self, exec: &K8sExecutor) -> tokio::task::JoinHandle<Result<(), Error>> {
        let exec = exec.clone();
        tokio::spawn(async move {
            match self {
                Call::Start => exec.start(request("pi-0")).await,
                Call::Delete => {
                    exec.delete("pi-0", Some(chrono::Duration::seconds(5)))
                        .await
                }
                Call::List => exec.list(&selector()).await.map(|_| ()),
            }
        })
    }

    fn assert_request(self, seen: &Seen) {
        let (method, path) = match self {
            Call::Start => (Method::POST, PODS.to_owned()),
            Call::Delete => (Method::DELETE, format!("{PODS}/pi-0")),
            Call::List => (Method::GET, PODS.to_owned()),
        };
        assert_eq!((&seen.method, &seen.path), (&method, &path), "{self:?}");
        let query = match self {
            Call::Start | Call::Delete => vec![],
            Call::List => vec![("labelSelector", "batch.kubernetes.io/job-name=pi")],
        };
        assert_eq!(seen.query_pairs(), query, "{self:?}");
    }
}

/// The result of `call` when the server answers it with `response`.
async fn answered(call: Call, response: Response<Body>) -> Result<(), Error> {
    let (exec, mut handle) = connect().await;
    let task = call.spawn(&exec);
    let (seen, reply) = next_request(&mut handle).await;
    call.assert_request(&seen);
    reply.send_response(response);
    tokio::time::timeout(GUARD, task)
        .await
        .expect("the call did not end")
        .unwrap()
}

/// The API status code of the kube error under an executor error.
fn api_code(error: &Error) -> Option<u16> {
    let source = std::error::Error::source(error)?;
    match source.downcast_ref::<kube::Error>()? {
        kube::Error::Api(status) => Some(status.code),
        _ => None,
    }
}

/// Asserts `result` is the error `kind` of `call`, transient or not.
fn assert_error(result: Result<(), Error>, call: Call, kind: ErrorKind, transient: bool) -> Error {
    let error = result.expect_err("the call succeeded");
    assert_eq!(error.kind(), kind, "{call:?}: {error}");
    assert_eq!(error.is_transient(), transient, "{call:?}: {error}");
    assert_eq!(error.operation(), call.operation(), "{error}");
    error
}

// ----- errors -----

#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_are_unavailable_and_transient() {
    let answers = [
        (
            429,
            "TooManyRequests",
            "Too many requests, please try again later.",
        ),
        (
            500,
            "InternalError",
            "Internal error occurred: etcdserver: leader changed",
        ),
        (
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
        ),
    ];
    for call in Call::ALL {
        for (code, reason, message) in answers {
            let result = answered(call, status_response(code, reason, message)).await;
            let error = assert_error(result, call, ErrorKind::Unavailable, true);
            assert_eq!(api_code(&error), Some(code), "{call:?} {code}: {error}");
            assert!(error.message().contains(message), "{call:?}: {error}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn plain_text_throttling_and_server_errors_from_a_proxy_are_unavailable_and_transient() {
    // Not a `Status` object: kube keeps the HTTP status as the code.
    for call in Call::ALL {
        for code in [429, 502, 503] {
            let result = answered(call, text_response(code, "upstream overloaded")).await;
            let error = assert_error(result, call, ErrorKind::Unavailable, true);
            assert_eq!(api_code(&error), Some(code), "{call:?} {code}: {error}");
        }
    }
}

/// kube reads any JSON object in an error answer as a `Status`, and takes the code from it
/// (0 when absent), not from the HTTP status line; `K8sExecutor` reads code 0 as a server
/// in trouble (Unavailable, retried), so a 503 from a gateway answering `{"message": "..."}`
/// is retried.
#[tokio::test(start_paused = true)]
async fn throttling_and_server_errors_with_a_json_body_that_is_not_a_status_are_transient() {
    for call in Call::ALL {
        for code in [429, 503] {
            let body = json!({ "message": "upstream overloaded" });
            let result = answered(call, json_response(code, &body)).await;
            assert_error(result, call, ErrorKind::Unavailable, true);
        }
    }
}

#[tokio::test(start_paused = true)]
async fn not_found_is_not_found_and_not_transient() {
    // Delete: the pod is gone; start: the namespace is.
    let result = answered(
        Call::Delete,
        status_response(404, "NotFound", "pods \"pi-0\" not found"),
    )
    .await;
    let error = assert_error(result, Call::Delete, ErrorKind::NotFound, false);
    assert_eq!(api_code(&error), Some(404));

    let result = answered(
        Call::Start,
        status_response(404, "NotFound", "namespaces \"jobs\" not found"),
    )
    .await;
    let error = assert_error(result, Call::Start, ErrorKind::NotFound, false);
    assert_eq!(api_code(&error), Some(404));
}

#[tokio::test(start_paused = true)]
async fn a_conflict_on_create_is_already_exists_and_not_transient() {
    let result = answered(
        Call::Start,
        status_response(409, "AlreadyExists", "pods \"pi-0\" already exists"),
    )
    .await;
    let error = assert_error(result, Call::Start, ErrorKind::AlreadyExists, false);
    assert_eq!(api_code(&error), Some(409));
}

#[tokio::test(start_paused = true)]
async fn a_broken_connection_is_unavailable_and_transient() {
    for call in Call::ALL {
        let (exec, mut handle) = connect().await;
        let task = call.spawn(&exec);
        let (seen, reply) = next_request(&mut handle).await;
        call.assert_request(&seen);
        reply.send_error(std::io::Error::new(
            std::io::ErrorKind::ConnectionReset,
            "connection reset by peer",
        ));
        let result = tokio::time::timeout(GUARD, task).await.unwrap().unwrap();
        let error = assert_error(result, call, ErrorKind::Unavailable, true);
        let source = std::error::Error::source(&error).expect("no source");
        assert!(
            matches!(
                source.downcast_ref::<kube::Error>(),
                Some(kube::Error::Service(_))
            ),
            "{call:?}: {source:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn connecting_to_a_namespace_that_does_not_exist_is_not_found() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let connecting = tokio::spawn(K8sExecutor::from_client(client, NAMESPACE));
    let (_, reply) = next_request(&mut handle).await;
    reply.send_response(json_response(200, &version_info()));
    let (seen, reply) = next_request(&mut handle).await;
    assert_eq!(seen.path, format!("/api/v1/namespaces/{NAMESPACE}"));
    reply.send_response(status_response(
        404,
        "NotFound",
        &format!("namespaces \"{NAMESPACE}\" not found"),
    ));
    let error = connecting.await.unwrap().expect_err("connected");
    assert_eq!(error.kind(), ErrorKind::NotFound, "{error}");
    assert!(!error.is_transient(), "{error}");
    assert!(error.message().contains(NAMESPACE), "{error}");
}

#[tokio::test(start_paused = true)]
async fn connecting_to_an_unavailable_server_is_unavailable_and_transient() {
    let (service, mut handle) = mock::pair::<Request<Body>, Response<Body>>();
    let client = kube::Client::new(service, "default");
    let connecting = tokio::spawn(K8sExecutor::from_client(client, NAMESPACE));
    let (seen, reply) = next_request(&mut handle).await;
    assert_eq!(seen.path, "/version");
    reply.send_response(status_response(
        503,
        "ServiceUnavailable",
        "the server is currently unable to handle the request",
    ));
    let error = connecting.await.unwrap().expect_err("connected");
    assert_eq!(error.kind(), ErrorKind::Unavailable, "{error}");
    assert!(error.is_transient(), "{error}");
    assert_eq!(error.operation(), "connect");
    assert_eq!(api_code(&error), Some(503));
}

// ----- watch -----

/// A watch item, in short.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Item {
    Applied(String, PodPhase),
    Deleted(String),
    /// An `Err` item: its kind and whether it is transient.
    Err(ErrorKind, bool),
}

/// The next `n` items of `stream` (and the errors among them, in full).
async fn take(stream: &mut WatchStream, n: usize) -> (Vec<Item>, Vec<Error>) {
    let mut items = Vec::new();
    let mut errors = Vec::new();
    while items.len() < n {
        let item = tokio::time::timeout(GUARD, stream.next())
            .await
            .unwrap_or_else(|_| panic!("the watch stalled after {items:?}"))
            .unwrap_or_else(|| panic!("the watch ended after {items:?}"));
        items.push(match item {
            Ok(WatchEvent::Applied(pod)) => Item::Applied(pod.name.clone(), pod.phase),
            Ok(WatchEvent::Deleted { name }) => Item::Deleted(name),
            Ok(other) => panic!("unexpected watch event {other:?}"),
            Err(error) => {
                assert_eq!(error.operation(), "watch", "{error}");
                let item = Item::Err(error.kind(), error.is_transient());
                errors.push(error);
                item
            }
        });
    }
    (items, errors)
}

fn applied(name: &str, phase: PodPhase) -> Item {
    Item::Applied(name.to_owned(), phase)
}

/// The kube watcher error under an executor watch error.
fn watcher_error(error: &Error) -> &kube::runtime::watcher::Error {
    std::error::Error::source(error)
        .and_then(|s| s.downcast_ref::<kube::runtime::watcher::Error>())
        .unwrap_or_else(|| panic!("not a watcher error: {error:?}"))
}

#[tokio::test(start_paused = true)]
async fn the_watch_resumes_after_the_server_ends_it() {
    let (exec, handle) = connect().await;
    let server = serve_in_order(
        handle,
        vec![
            json_response(200, &pod_list("100", &[pod("pi-a", "Pending", "90")])),
            // The first watch: one event, then the response ends (the connection is dropped).
            watch_response(&[event("MODIFIED", &pod("pi-a", "Running", "101"))]),
            // The watch again, from where the first one stopped.
            watch_response(&[
                event("MODIFIED", &pod("pi-a", "Succeeded", "102")),
                event("ADDED", &pod("pi-b", "Pending", "103")),
                event("DELETED", &pod("pi-a", "Succeeded", "104")),
            ]),
        ],
    );

    let mut stream = exec.watch(&selector()).await.unwrap();
    let (items, _) = take(&mut stream, 5).await;
    // No error item: the end of a watch response is not an error, the watcher resumes.
    assert_eq!(
        items,
        vec![
            applied("pi-a", PodPhase::Pending),
            applied("pi-a", PodPhase::Running),
            applied("pi-a", PodPhase::Succeeded),
            applied("pi-b", PodPhase::Pending),
            Item::Deleted("pi-a".to_owned()),
        ]
    );
    let (seen, _handle) = server.await.unwrap();
    assert_eq!(seen.len(), 3);
    seen[0].assert_watcher_list();
    seen[1].assert_watch_from("100");
    // Resumed from the last event's version, not listed again.
    seen[2].assert_watch_from("101");
}

#[tokio::test(start_paused = true)]
async fn a_gone_watch_is_reported_and_the_new_list_is_watched() {
    let (exec, handle) = connect().await;
    let server = serve_in_order(
        handle,
        vec![
            json_response(
                200,
                &pod_list(
                    "100",
                    &[pod("pi-a", "Running", "90"), pod("pi-c", "Running", "95")],
                ),
            ),
            // A real API server answers a watch from a compacted version with 200 and an ERROR
            // event (code 410), here after one event.
            watch_response(&[
                event("MODIFIED", &pod("pi-a", "Succeeded", "105")),
                gone_event("105"),
            ]),
            // The list again: pi-c has gone meanwhile, pi-b has come.
            json_response(
                200,
                &pod_list(
                    "200",
                    &[
                        pod("pi-a", "Succeeded", "105"),
                        pod("pi-b", "Pending", "150"),
                    ],
                ),
            ),
            watch_response(&[event("DELETED", &pod("pi-a", "Succeeded", "201"))]),
        ],
    );

    let mut stream = exec.watch(&selector()).await.unwrap();
    let (items, errors) = take(&mut stream, 7).await;
    assert_eq!(
        items,
        vec![
            applied("pi-a", PodPhase::Running),
            applied("pi-c", PodPhase::Running),
            applied("pi-a", PodPhase::Succeeded),
            // The 410: one transient error item; the stream goes on.
            Item::Err(ErrorKind::Unavailable, true),
            // The new list, as applied pods. Nothing says pi-c is gone: the caller is to list
            // again after an error item (as `WatchStream` documents).
            applied("pi-a", PodPhase::Succeeded),
            applied("pi-b", PodPhase::Pending),
            // The watch from the new list's version.
            Item::Deleted("pi-a".to_owned()),
        ]
    );
    match watcher_error(&errors[0]) {
        kube::runtime::watcher::Error::WatchError(status) => {
            assert_eq!(status.code, 410);
            assert_eq!(status.reason, "Expired");
        }
        other => panic!("not the watch's 410: {other:?}"),
    }
    assert!(
        errors[0].message().contains("too old resource version"),
        "{}",
        errors[0]
    );
    let (seen, _handle) = server.await.unwrap();
    assert_eq!(seen.len(), 4);
    seen[0].assert_watcher_list();
    seen[1].assert_watch_from("100");
    seen[2].assert_watcher_list();
    seen[3].assert_watch_from("200");
}

#[tokio::test(start_paused = true)]
async fn a_410_status_answering_the_watch_request_lists_again() {
    // Not what a kube-apiserver does (it sends 410 as an ERROR event, above), but what a
    // server reading etcd directly, a proxy or an aggregated server may. kube's watcher alone
    // would retry the watch from the same expired version for ever; the executor lists again,
    // as client-go's reflector does, and watches from the new list's version.
    let (exec, handle) = connect().await;
    let server = serve_in_order(
        handle,
        vec![
            json_response(200, &pod_list("100", &[pod("pi-a", "Running", "90")])),
            status_response(410, "Expired", "too old resource version: 100 (150)"),
            json_response(200, &pod_list("200", &[pod("pi-a", "Succeeded", "160")])),
            watch_response(&[event("MODIFIED", &pod("pi-a", "Succeeded", "210"))]),
        ],
    );

    let mut stream = exec.watch(&selector()).await.unwrap();
    let (items, errors) = take(&mut stream, 4).await;
    assert_eq!(
        items,
        vec![
            applied("pi-a", PodPhase::Running),
            Item::Err(ErrorKind::Unavailable, true),
            applied("pi-a", PodPhase::Succeeded),
            applied("pi-a", PodPhase::Succeeded),
        ]
    );
    match watcher_error(&errors[0]) {
        kube::runtime::watcher::Error::WatchStartFailed(kube::Error::Api(status)) => {
            assert_eq!(status.code, 410);
        }
        other => panic!("not the watch start's 410: {other:?}"),
    }
    let (seen, _handle) = server.await.unwrap();
    assert_eq!(seen.len(), 4);
    seen[0].assert_watcher_list();
    seen[1].assert_watch_from("100");
    seen[2].assert_watcher_list();
    seen[3].assert_watch_from("200");
}

#[tokio::test(start_paused = true)]
async fn a_watch_request_failing_otherwise_is_retried_at_the_same_version() {
    // Any other failed start (here a 500) keeps the version: no list in between.
    let (exec, handle) = connect().await;
    let server = serve_in_order(
        handle,
        vec![
            json_response(200, &pod_list("100", &[pod("pi-a", "Running", "90")])),
            status_response(500, "InternalError", "etcd is down"),
            watch_response(&[event("MODIFIED", &pod("pi-a", "Succeeded", "160"))]),
        ],
    );

    let mut stream = exec.watch(&selector()).await.unwrap();
    let (items, _errors) = take(&mut stream, 3).await;
    assert_eq!(
        items,
        vec![
            applied("pi-a", PodPhase::Running),
            Item::Err(ErrorKind::Unavailable, true),
            applied("pi-a", PodPhase::Succeeded),
        ]
    );
    let (seen, _handle) = server.await.unwrap();
    assert_eq!(seen.len(), 3);
    seen[0].assert_watcher_list();
    seen[1].assert_watch_from("100");
    seen[2].assert_watch_from("100");
}

#[tokio::test(start_paused = true)]
async fn a_failed_watch_list_is_reported_and_listed_again() {
    let (exec, handle) = connect().await;
    let server = serve_in_order(
        handle,
        vec![
            status_response(429, "TooManyRequests", "slow down"),
            text_response(503, "no healthy upstream"),
            json_response(200, &pod_list("100", &[pod("pi-a", "Failed", "90")])),
        ],
    );

    let mut stream = exec.watch(&selector()).await.unwrap();
    let (items, errors) = take(&mut stream, 3).await;
    assert_eq!(
        items,
        vec![
            Item::Err(ErrorKind::Unavailable, true),
            Item::Err(ErrorKind::Unavailable, true),
            applied("pi-a", PodPhase::Failed),
        ]
    );
    for (error, code) in errors.iter().zip([429, 503]) {
        match watcher_error(error) {
            kube::runtime::watcher::Error::InitialListFailed(kube::Error::Api(status)) => {
                assert_eq!(status.code, code);
            }
            other => panic!("not the list's {code}: {other:?}"),
        }
    }
    let (seen, _handle) = server.await.unwrap();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        request.assert_watcher_list();
    }
}

/// A watch the server forbids is reported as such (not as a passing outage), and the
/// watcher still tries again (the permission may be granted meanwhile).
#[tokio::test(start_paused = true)]
async fn a_forbidden_watch_is_permission_denied_and_tried_again() {
    let (exec, mut handle) = connect().await;
    let server = tokio::spawn(async move {
        let (request, reply) = next_request(&mut handle).await;
        request.assert_watcher_list();
        reply.send_response(status_response(
            403,
            "Forbidden",
            "pods is forbidden: User \"batch\" cannot list resource \"pods\"",
        ));
        let (request, reply) = next_request(&mut handle).await;
        request.assert_watcher_list();
        reply.send_response(json_response(
            200,
            &pod_list("100", &[pod("pi-a", "Running", "90")]),
        ));
        handle
    });
    let mut stream = exec.watch(&selector()).await.unwrap();
    let (items, errors) = take(&mut stream, 2).await;
    assert_eq!(
        items,
        vec![
            Item::Err(ErrorKind::PermissionDenied, false),
            applied("pi-a", PodPhase::Running),
        ]
    );
    assert!(errors[0].to_string().contains("forbidden"), "{}", errors[0]);
    let _handle = server.await.unwrap();
}

// ----- slow answers -----

/// Answers the next request after [`SLOW`], checking `call` is still waiting then.
async fn answer_late<T>(
    handle: &mut ApiHandle,
    call: &tokio::task::JoinHandle<T>,
    response: Response<Body>,
) -> Seen {
    let (seen, reply) = next_request(handle).await;
    tokio::time::sleep(SLOW).await;
    assert!(!call.is_finished(), "the call ended before its answer came");
    reply.send_response(response);
    seen
}

#[tokio::test(start_paused = true)]
async fn a_slow_list_answer_is_waited_for() {
    let (exec, mut handle) = connect().await;
    let call = {
        let exec = exec.clone();
        tokio::spawn(async move { exec.list(&selector()).await })
    };
    let seen = answer_late(
        &mut handle,
        &call,
        json_response(
            200,
            &pod_list(
                "100",
                &[pod("pi-a", "Running", "90"), pod("pi-b", "Succeeded", "95")],
            ),
        ),
    )
    .await;
    Call::List.assert_request(&seen);
    let pods = call.await.unwrap().unwrap();
    let pods: Vec<(String, PodPhase, String)> =
        pods.into_iter().map(|p| (p.name, p.phase, p.uid)).collect();
    assert_eq!(
        pods,
        vec![
            ("pi-a".to_owned(), PodPhase::Running, "pi-a-uid".to_owned()),
            (
                "pi-b".to_owned(),
                PodPhase::Succeeded,
                "pi-b-uid".to_owned()
            ),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn slow_create_and_delete_answers_are_waited_for() {
    let (exec, mut handle) = connect().await;
    let call = Call::Start.spawn(&exec);
    let seen = answer_late(
        &mut handle,
        &call,
        json_response(201, &pod("pi-0", "Pending", "10")),
    )
    .await;
    Call::Start.assert_request(&seen);
    call.await.unwrap().unwrap();

    let call = Call::Delete.spawn(&exec);
    let mut deleting = pod("pi-0", "Pending", "11");
    deleting["metadata"]["deletionTimestamp"] = json!("2025-01-01T00:00:05Z");
    deleting["metadata"]["deletionGracePeriodSeconds"] = json!(5);
    let seen = answer_late(&mut handle, &call, json_response(200, &deleting)).await;
    Call::Delete.assert_request(&seen);
    call.await.unwrap().unwrap();
}

#[tokio::test(start_paused = true)]
async fn slow_watch_answers_are_waited_for() {
    let (exec, mut handle) = connect().await;
    let mut stream = exec.watch(&selector()).await.unwrap();
    let reader = tokio::spawn(async move { take(&mut stream, 2).await });
    let seen = answer_late(
        &mut handle,
        &reader,
        json_response(200, &pod_list("100", &[pod("pi-a", "Pending", "90")])),
    )
    .await;
    seen.assert_watcher_list();
    let seen = answer_late(
        &mut handle,
        &reader,
        watch_response(&[event("MODIFIED", &pod("pi-a", "Running", "101"))]),
    )
    .await;
    seen.assert_watch_from("100");
    let (items, _) = reader.await.unwrap();
    assert_eq!(
        items,
        vec![
            applied("pi-a", PodPhase::Pending),
            applied("pi-a", PodPhase::Running),
        ]
    );
}
