//! The Docker executor's own behaviours on a real engine (`DOCKER_HOST`; the test command
//! starts one and builds the test images): images that cannot be had, volumes shared by
//! init and app containers, downward API files, a pod adopted by a new executor after the
//! first one is gone, and templates it refuses. Without an engine each test prints `SKIP`,
//! unless `BATCH_TEST_REQUIRE_DOCKER=1` (then it fails).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::time::Duration;

use batch_core::executor::{
    ContainerRunState, ErrorKind, Executor, JobRef, PodObservation, PodRequest, WatchEvent,
};
use batch_core::job::PodPhase;
use batch_core::model::PodTemplateSpec;
use batch_executor_docker::{DockerExecutor, DockerExecutorConfig, testing};
use futures_util::StreamExt;

/// A unique prefix for this test's pods (the engine is shared by concurrent tests).
fn unique(name: &str) -> String {
    format!("dk{}-{name}", std::process::id())
}

fn pod(name: &str, spec: &str) -> PodRequest {
    PodRequest {
        name: name.to_owned(),
        job: JobRef {
            namespace: String::new(),
            name: name.to_owned(),
            uid: format!("{name}-uid"),
        },
        index: Some(3),
        labels: BTreeMap::from([("test".to_owned(), name.to_owned())]),
        annotations: BTreeMap::from([(
            "batch.kubernetes.io/job-completion-index".to_owned(),
            "3".to_owned(),
        )]),
        hostname: None,
        spec: serde_norway::from_str(spec).unwrap(),
    }
}

async fn executor(instance: &str) -> Option<DockerExecutor> {
    testing::test_engine().await?;
    let config = DockerExecutorConfig {
        instance: instance.to_owned(),
        ..DockerExecutorConfig::default()
    };
    Some(
        DockerExecutor::connect(config)
            .await
            .expect("the executor connects"),
    )
}

/// Waits (up to 60 s) for the pod's terminal observation.
async fn terminal(exec: &DockerExecutor, name: &str) -> PodObservation {
    let selector = BTreeMap::from([("test".to_owned(), name.to_owned())]);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut watch = exec.watch(&selector).await.unwrap();
    loop {
        let listed = exec.list(&selector).await.unwrap();
        if let Some(p) = listed.into_iter().find(|p| p.name == name)
            && p.phase.is_terminal()
        {
            return p;
        }
        let next = tokio::time::timeout_at(deadline, watch.next()).await;
        match next {
            Ok(Some(Ok(WatchEvent::Applied(p)))) if p.name == name && p.phase.is_terminal() => {
                return *p;
            }
            Ok(Some(_)) => {}
            Ok(None) => panic!("the watch ended"),
            Err(_) => panic!("pod {name} did not finish within 60 s"),
        }
    }
}

async fn logs(exec: &DockerExecutor, pod: &str, container: &str) -> String {
    String::from_utf8_lossy(&exec.logs(pod, container).await.unwrap()).into_owned()
}

async fn remove(exec: &DockerExecutor, name: &str) {
    exec.delete(name, Some(chrono::Duration::zero()))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        let all = exec.list(&BTreeMap::new()).await.unwrap();
        if !all.iter().any(|p| p.name == name) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("pod {name} was not removed within 30 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_image_that_cannot_be_pulled_fails_the_pod_with_a_config_issue() {
    let Some(exec) = executor("pull").await else {
        return;
    };
    let name = unique("nopull");
    let spec = "restartPolicy: Never
containers: [{name: main, image: 'non-existing-repo/non-existing-image:example'}]";
    exec.start(pod(&name, spec)).await.unwrap();
    let p = terminal(&exec, &name).await;
    assert_eq!(
        (p.phase, p.reason.as_str()),
        (PodPhase::Failed, "ErrImagePull"),
        "{p:#?}"
    );
    assert!(
        p.message.contains("non-existing-repo/non-existing-image"),
        "{}",
        p.message
    );
    let c = p
        .conditions
        .iter()
        .find(|c| c.type_ == "ConfigIssue")
        .expect("ConfigIssue");
    assert_eq!(c.status, batch_core::model::ConditionStatus::True);
    assert!(matches!(
        &p.containers[0].state,
        ContainerRunState::Waiting { reason, .. } if reason == "ErrImagePull"
    ));
    // `Never` with an image that is not present fails the same way, without a pull.
    let never = unique("never");
    let spec = "restartPolicy: Never
containers: [{name: main, image: 'not-here:1', imagePullPolicy: Never}]";
    exec.start(pod(&never, spec)).await.unwrap();
    let p = terminal(&exec, &never).await;
    assert_eq!(p.reason, "ErrImagePull");
    assert!(
        p.message.contains("imagePullPolicy is Never"),
        "{}",
        p.message
    );
    remove(&exec, &name).await;
    remove(&exec, &never).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn init_and_app_containers_share_empty_dirs_and_read_downward_files() {
    let Some(exec) = executor("volumes").await else {
        return;
    };
    let name = unique("vols");
    let spec = r#"restartPolicy: Never
volumes:
- {name: work, emptyDir: {}}
- name: info
  downwardAPI:
    items:
    - {path: index, fieldRef: {fieldPath: "metadata.annotations['batch.kubernetes.io/job-completion-index']"}}
    - {path: labels, fieldRef: {fieldPath: metadata.labels}}
initContainers:
- name: write
  image: docker.io/library/bash:5
  command: [bash, -c, 'echo "from init $BASH_VERSINFO" > /work/msg']
  volumeMounts: [{name: work, mountPath: /work}]
containers:
- name: read
  image: busybox
  command: [sh, -c, 'cat /work/msg; cat /info/index; echo; cat /info/labels; echo; hostname']
  workingDir: /work
  volumeMounts: [{name: work, mountPath: /work}, {name: info, mountPath: /info, readOnly: true}]"#;
    exec.start(pod(&name, spec)).await.unwrap();
    let p = terminal(&exec, &name).await;
    assert_eq!(p.phase, PodPhase::Succeeded, "{p:#?}");
    let out = logs(&exec, &name, "read").await;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "from init 5", "{out}");
    assert_eq!(lines[1], "3", "{out}");
    assert_eq!(lines[2], format!("test=\"{name}\""), "{out}");
    assert_eq!(lines[3], name, "the hostname is the pod's: {out}");
    remove(&exec, &name).await;
    // Its volumes went with it.
    let volumes = exec
        .docker()
        .list_volumes(None::<bollard::query_parameters::ListVolumesOptions>)
        .await
        .unwrap();
    let left: Vec<String> = volumes
        .volumes
        .unwrap_or_default()
        .into_iter()
        .map(|v| v.name)
        .filter(|v| v.starts_with(&name))
        .collect();
    assert!(left.is_empty(), "volumes left: {left:?}");
}

#[test]
fn a_new_executor_adopts_running_pods_and_carries_them_to_their_end() {
    let name = unique("adopted");
    // The first executor runs in a runtime of its own, shut down (its tasks with it) while
    // the pod's init container runs: the second one must start the app container after it.
    let first_runtime = runtime();
    let started = first_runtime.block_on(async {
        let Some(first) = executor("adopt").await else {
            return false;
        };
        let spec = "restartPolicy: Never
initContainers: [{name: wait, image: busybox, command: [sleep, '2']}]
containers: [{name: main, image: busybox, command: [sh, -c, 'echo adopted; exit 3']}]";
        first.start(pod(&name, spec)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        true
    });
    first_runtime.shutdown_background();
    if !started {
        return;
    }
    runtime().block_on(adopt_and_finish(&name));
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

async fn adopt_and_finish(name: &str) {
    let name = name.to_owned();
    let second = executor("adopt").await.unwrap();
    let listed = second.list(&BTreeMap::new()).await.unwrap();
    let p = listed
        .iter()
        .find(|p| p.name == name)
        .expect("listed by the new executor");
    assert!(!p.phase.is_terminal(), "{p:#?}");
    let p = terminal(&second, &name).await;
    assert_eq!(p.phase, PodPhase::Failed, "{p:#?}");
    let main = p.containers.iter().find(|c| c.name == "main").unwrap();
    assert_eq!(main.terminated().map(|t| t.exit_code), Some(3));
    assert_eq!(logs(&second, &name, "main").await, "adopted\n");
    // Another instance does not see it.
    let other = executor("someone-else").await.unwrap();
    assert!(
        !other
            .list(&BTreeMap::new())
            .await
            .unwrap()
            .iter()
            .any(|p| p.name == name)
    );
    let err = other.delete(&name, None).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
    remove(&second, &name).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn templates_it_cannot_honour_are_refused_with_field_paths() {
    let Some(exec) = executor("check").await else {
        return;
    };
    let template: PodTemplateSpec = serde_norway::from_str(
        "spec:
  volumes: [{name: c, configMap: {name: x}}, {name: h, hostPath: {path: /etc}}]
  containers: [{name: a, image: busybox, volumeMounts: [{name: h, mountPath: /h, subPath: s}]}]",
    )
    .unwrap();
    let errors = exec.check_template(&template).unwrap_err().to_string();
    for field in [
        "template.spec.volumes[0]",
        "template.spec.volumes[1].hostPath",
        "template.spec.containers[0].volumeMounts[0].subPath",
    ] {
        assert!(errors.contains(field), "{field} not named in: {errors}");
    }
    // And `start` refuses such a pod before creating anything.
    let name = unique("refused");
    let err = exec
        .start(pod(&name, "containers: [{name: a, image: busybox}]\nvolumes: [{name: c, secret: {secretName: s}}]"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
    assert!(
        exec.list(&BTreeMap::new())
            .await
            .unwrap()
            .iter()
            .all(|p| p.name != name)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_engine_is_a_clear_unavailable_error() {
    let config = DockerExecutorConfig {
        host: Some("unix:///nonexistent/docker.sock".to_owned()),
        ..DockerExecutorConfig::default()
    };
    let err = DockerExecutor::connect(config).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Unavailable);
    assert!(
        err.to_string().contains("unix:///nonexistent/docker.sock"),
        "{err}"
    );
    let bad = DockerExecutorConfig {
        host: Some("ftp://example".to_owned()),
        ..DockerExecutorConfig::default()
    };
    let err = DockerExecutor::connect(bad).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidRequest, "{err}");
}
