//! Pod template validation: the parts of Kubernetes' `ValidatePodTemplateSpec` that a batch
//! manifest exercises (labels, annotations, containers, init containers, environment,
//! volume mounts, resources, volumes, deadlines).

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use super::meta::{
    validate_annotations, validate_dns1123_label, validate_labels, validate_qualified_name,
};
use super::{FieldError, FieldPath};
use crate::model::{
    Container, EnvVar, ObjectFieldSelector, PodSpec, PodTemplateSpec, PullPolicy, Quantity,
    ResourceRequirements, RestartPolicy, Volume,
};

/// `ValidatePodTemplateSpec`, at `path` (for a Job: `spec.template`).
pub(crate) fn validate_pod_template(
    template: &PodTemplateSpec,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    // Kubernetes reports template labels and annotations at `<path>.labels` (no
    // `.metadata`): the template's metadata is embedded in the Go type.
    validate_labels(&template.metadata.labels, &path.child("labels"), errs);
    validate_annotations(
        &template.metadata.annotations,
        &path.child("annotations"),
        errs,
    );
    validate_pod_spec(&template.spec, &path.child("spec"), errs);
    let has_ephemeral = template
        .spec
        .extra
        .get("ephemeralContainers")
        .and_then(serde_json::Value::as_array)
        .is_some_and(|a| !a.is_empty());
    if has_ephemeral {
        errs.push(FieldError::forbidden(
            path.child("spec").child("ephemeralContainers"),
            "ephemeral containers not allowed in pod template",
        ));
    }
}

fn validate_pod_spec(spec: &PodSpec, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if spec.termination_grace_period_seconds.is_none() {
        errs.push(FieldError::required(
            path.child("terminationGracePeriodSeconds"),
            "",
        ));
    }
    let volumes = validate_volumes(&spec.volumes, &path.child("volumes"), errs);
    validate_containers(&spec.containers, &volumes, &path.child("containers"), errs);
    validate_init_containers(
        &spec.init_containers,
        &spec.containers,
        &volumes,
        &path.child("initContainers"),
        errs,
    );
    let restart_path = path.child("restartPolicy");
    match &spec.restart_policy {
        RestartPolicy::Other(value) if value.is_empty() => {
            errs.push(FieldError::required(restart_path, ""));
        }
        RestartPolicy::Other(value) => errs.push(FieldError::not_supported(
            restart_path,
            value.as_str(),
            &["Always", "OnFailure", "Never"],
        )),
        _ => {}
    }
    if let Some(deadline) = spec.active_deadline_seconds
        && (deadline < 1 || deadline > i64::from(i32::MAX))
    {
        errs.push(FieldError::invalid(
            path.child("activeDeadlineSeconds"),
            deadline,
            format!("must be between 1 and {}, inclusive", i32::MAX),
        ));
    }
    if let Some(hostname) = spec.hostname.as_deref().filter(|h| !h.is_empty()) {
        validate_dns1123_label(hostname, &path.child("hostname"), errs);
    }
    if let Some(subdomain) = spec.subdomain.as_deref().filter(|s| !s.is_empty()) {
        validate_dns1123_label(subdomain, &path.child("subdomain"), errs);
    }
}

// ---------------------------------------------------------------------------------------
// Volumes

/// Volume sources in the order Kubernetes checks them: (JSON name, name used in the
/// "more than 1 volume type" error path; upstream misspells two of them).
const VOLUME_SOURCES: &[(&str, &str)] = &[
    ("emptyDir", "emptyDir"),
    ("hostPath", "hostPath"),
    ("gitRepo", "gitRepo"),
    ("gcePersistentDisk", "gcePersistentDisk"),
    ("awsElasticBlockStore", "awsElasticBlockStore"),
    ("secret", "secret"),
    ("nfs", "nfs"),
    ("iscsi", "iscsi"),
    ("glusterfs", "glusterfs"),
    ("flocker", "flocker"),
    ("persistentVolumeClaim", "persistentVolumeClaim"),
    ("rbd", "rbd"),
    ("cinder", "cinder"),
    ("cephfs", "cephFS"),
    ("quobyte", "quobyte"),
    ("downwardAPI", "downwarAPI"),
    ("fc", "fc"),
    ("flexVolume", "flexVolume"),
    ("configMap", "configMap"),
    ("azureFile", "azureFile"),
    ("vsphereVolume", "vsphereVolume"),
    ("photonPersistentDisk", "photonPersistentDisk"),
    ("portworxVolume", "portworxVolume"),
    ("azureDisk", "azureDisk"),
    ("storageos", "storageos"),
    ("projected", "projected"),
    ("scaleIO", "scaleIO"),
    ("csi", "csi"),
    ("ephemeral", "ephemeral"),
    ("image", "image"),
];

const FILE_MODE_ERROR: &str = "must be a number between 0 and 0777 (octal), both inclusive";

/// `ValidateVolumes`: returns the names of the volumes without errors (the ones mounts may
/// refer to).
fn validate_volumes(
    volumes: &[Volume],
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    for (i, volume) in volumes.iter().enumerate() {
        let vol_path = path.index(i);
        let name_path = vol_path.child("name");
        let mut el = Vec::new();
        validate_volume_source(volume, &vol_path, &mut el);
        if volume.name.is_empty() {
            el.push(FieldError::required(name_path.clone(), ""));
        } else {
            validate_dns1123_label(&volume.name, &name_path, &mut el);
        }
        if names.contains(&volume.name) {
            el.push(FieldError::duplicate(name_path, volume.name.as_str()));
        }
        if el.is_empty() {
            names.insert(volume.name.clone());
        } else {
            errs.extend(el);
        }
    }
    names
}

fn is_set(volume: &Volume, json_name: &str) -> bool {
    match json_name {
        "emptyDir" => volume.empty_dir.is_some(),
        "hostPath" => volume.host_path.is_some(),
        "downwardAPI" => volume.downward_api.is_some(),
        other => volume.extra.get(other).is_some_and(|v| !v.is_null()),
    }
}

fn validate_volume_source(volume: &Volume, path: &FieldPath, errs: &mut Vec<FieldError>) {
    let mut count = 0;
    for &(json_name, error_name) in VOLUME_SOURCES {
        if !is_set(volume, json_name) {
            continue;
        }
        if count > 0 {
            errs.push(FieldError::forbidden(
                path.child(error_name),
                "may not specify more than 1 volume type",
            ));
            continue;
        }
        count += 1;
        match json_name {
            "emptyDir" => {
                if let Some(limit) = volume
                    .empty_dir
                    .as_ref()
                    .and_then(|e| e.size_limit.as_ref())
                {
                    let limit_path = path.child("emptyDir").child("sizeLimit");
                    match parse_quantity(&limit.0) {
                        Err(msg) => {
                            errs.push(FieldError::invalid(limit_path, limit.0.as_str(), msg))
                        }
                        Ok(q) if q.is_negative() => errs.push(FieldError::forbidden(
                            limit_path,
                            "SizeLimit field must be a valid resource quantity",
                        )),
                        Ok(_) => {}
                    }
                }
            }
            "hostPath" => {
                if let Some(host_path) = &volume.host_path {
                    let hp_path = path.child("hostPath");
                    if host_path.path.is_empty() {
                        errs.push(FieldError::required(hp_path.child("path"), ""));
                    } else {
                        validate_path_no_backsteps(&host_path.path, &hp_path.child("path"), errs);
                        if let Some(type_) = &host_path.type_ {
                            const TYPES: &[&str] = &[
                                "",
                                "BlockDevice",
                                "CharDevice",
                                "Directory",
                                "DirectoryOrCreate",
                                "File",
                                "FileOrCreate",
                                "Socket",
                            ];
                            if !TYPES.contains(&type_.as_str()) {
                                errs.push(FieldError::not_supported(
                                    hp_path.child("type"),
                                    type_.as_str(),
                                    TYPES,
                                ));
                            }
                        }
                    }
                }
            }
            "downwardAPI" => {
                if let Some(source) = &volume.downward_api {
                    let dapi_path = path.child("downwardAPI");
                    if let Some(mode) = source.default_mode
                        && !(0..=0o777).contains(&mode)
                    {
                        errs.push(FieldError::invalid(
                            dapi_path.child("defaultMode"),
                            mode,
                            FILE_MODE_ERROR,
                        ));
                    }
                    for item in &source.items {
                        // Upstream reports item problems without the item's index.
                        if item.path.is_empty() {
                            errs.push(FieldError::required(dapi_path.child("path"), ""));
                        }
                        validate_local_non_reserved_path(
                            &item.path,
                            &dapi_path.child("path"),
                            errs,
                        );
                        let has_resource_ref = item
                            .extra
                            .get("resourceFieldRef")
                            .is_some_and(|v| !v.is_null());
                        if let Some(field_ref) = &item.field_ref {
                            validate_object_field_selector(
                                field_ref,
                                VOLUME_FIELD_PATHS,
                                &dapi_path.child("fieldRef"),
                                errs,
                            );
                            if has_resource_ref {
                                errs.push(FieldError::invalid(
                                    dapi_path.clone(),
                                    "resource",
                                    "fieldRef and resourceFieldRef can not be specified simultaneously",
                                ));
                            }
                        } else if !has_resource_ref {
                            errs.push(FieldError::required(
                                dapi_path.clone(),
                                "one of fieldRef and resourceFieldRef is required",
                            ));
                        }
                        if let Some(mode) = item.mode
                            && !(0..=0o777).contains(&mode)
                        {
                            errs.push(FieldError::invalid(
                                dapi_path.child("mode"),
                                mode,
                                FILE_MODE_ERROR,
                            ));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    if count == 0 {
        errs.push(FieldError::required(
            path.clone(),
            "must specify a volume type",
        ));
    }
}

fn validate_path_no_backsteps(target: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if target.split('/').any(|part| part == "..") {
        errs.push(FieldError::invalid(
            path.clone(),
            target,
            "must not contain '..'",
        ));
    }
}

fn validate_local_descending_path(target: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    if target.starts_with('/') {
        errs.push(FieldError::invalid(
            path.clone(),
            target,
            "must be a relative path",
        ));
    }
    validate_path_no_backsteps(target, path, errs);
}

fn validate_local_non_reserved_path(target: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    validate_local_descending_path(target, path, errs);
    if target.starts_with("..") && !target.starts_with("../") {
        errs.push(FieldError::invalid(
            path.clone(),
            target,
            "must not start with '..'",
        ));
    }
}

// ---------------------------------------------------------------------------------------
// Containers

fn validate_containers(
    containers: &[Container],
    volumes: &BTreeSet<String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    if containers.is_empty() {
        errs.push(FieldError::required(path.clone(), ""));
        return;
    }
    let mut names = BTreeSet::new();
    for (i, container) in containers.iter().enumerate() {
        let c_path = path.index(i);
        validate_container_common(container, volumes, &c_path, errs);
        if !names.insert(container.name.as_str()) {
            errs.push(FieldError::duplicate(
                c_path.child("name"),
                container.name.as_str(),
            ));
        }
        if container.restart_policy.is_some() {
            errs.push(FieldError::forbidden(
                c_path.child("restartPolicy"),
                "may not be set for non-init containers",
            ));
        }
    }
}

fn validate_init_containers(
    init_containers: &[Container],
    containers: &[Container],
    volumes: &BTreeSet<String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let mut names: BTreeSet<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    for (i, container) in init_containers.iter().enumerate() {
        let c_path = path.index(i);
        validate_container_common(container, volumes, &c_path, errs);
        if let Some(policy) = &container.restart_policy
            && !policy.is_known()
        {
            errs.push(FieldError::not_supported(
                c_path.child("restartPolicy"),
                policy.as_str(),
                &["Always"],
            ));
        }
        if names.contains(container.name.as_str()) {
            errs.push(FieldError::duplicate(
                c_path.child("name"),
                container.name.as_str(),
            ));
        } else if !container.name.is_empty() {
            names.insert(container.name.as_str());
        }
    }
}

fn validate_container_common(
    container: &Container,
    volumes: &BTreeSet<String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let name_path = path.child("name");
    if container.name.is_empty() {
        errs.push(FieldError::required(name_path, ""));
    } else {
        validate_dns1123_label(&container.name, &name_path, errs);
    }
    if container.image.is_empty() {
        errs.push(FieldError::required(path.child("image"), ""));
    }
    validate_env(&container.env, &path.child("env"), errs);
    validate_volume_mounts(container, volumes, &path.child("volumeMounts"), errs);
    if let Some(policy) = &container.image_pull_policy {
        let policy_path = path.child("imagePullPolicy");
        match policy {
            PullPolicy::Other(value) if value.is_empty() => {
                errs.push(FieldError::required(policy_path, ""));
            }
            PullPolicy::Other(value) => errs.push(FieldError::not_supported(
                policy_path,
                value.as_str(),
                &["Always", "IfNotPresent", "Never"],
            )),
            _ => {}
        }
    }
    if let Some(resources) = &container.resources {
        validate_resources(resources, &path.child("resources"), errs);
    }
}

fn validate_env(vars: &[EnvVar], path: &FieldPath, errs: &mut Vec<FieldError>) {
    for (i, var) in vars.iter().enumerate() {
        let var_path = path.index(i);
        if var.name.is_empty() {
            errs.push(FieldError::required(var_path.child("name"), ""));
        } else if var
            .name
            .chars()
            .any(|c| !(' '..='~').contains(&c) || c == '=')
        {
            // The relaxed rule (RelaxedEnvironmentVariableValidation, on by default).
            errs.push(FieldError::invalid(
                var_path.child("name"),
                var.name.as_str(),
                "a valid environment variable name must consist only of printable ASCII characters other than '='",
            ));
        }
        let Some(source) = &var.value_from else {
            continue;
        };
        let from_path = var_path.child("valueFrom");
        let mut sources = 0;
        if let Some(field_ref) = &source.field_ref {
            sources += 1;
            validate_object_field_selector(
                field_ref,
                ENV_FIELD_PATHS,
                &from_path.child("fieldRef"),
                errs,
            );
        }
        for key in ["resourceFieldRef", "configMapKeyRef", "secretKeyRef"] {
            if source.extra.get(key).is_some_and(|v| !v.is_null()) {
                sources += 1;
            }
        }
        let value = var.value.as_deref().unwrap_or_default();
        if sources == 0 {
            errs.push(FieldError::invalid(
                from_path,
                "",
                "must specify one of: `fieldRef`, `resourceFieldRef`, `configMapKeyRef` or `secretKeyRef`",
            ));
        } else if !value.is_empty() {
            errs.push(FieldError::invalid(
                from_path,
                "",
                "may not be specified when `value` is not empty",
            ));
        } else if sources > 1 {
            errs.push(FieldError::invalid(
                from_path,
                "",
                "may not have more than one field specified at a time",
            ));
        }
    }
}

/// Field paths an environment variable may read (sorted, as Kubernetes lists them).
const ENV_FIELD_PATHS: &[&str] = &[
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
    "spec.nodeName",
    "spec.serviceAccountName",
    "status.hostIP",
    "status.hostIPs",
    "status.podIP",
    "status.podIPs",
];

/// Field paths a downward API volume file may read (sorted).
const VOLUME_FIELD_PATHS: &[&str] = &[
    "metadata.annotations",
    "metadata.labels",
    "metadata.name",
    "metadata.namespace",
    "metadata.uid",
];

/// Splits `path['key']` into `(path, key)`, as Kubernetes' `SplitMaybeSubscriptedPath`.
fn split_subscripted(field_path: &str) -> Option<(&str, &str)> {
    let inner = field_path.strip_suffix("']")?;
    let (path, key) = inner.split_once("['")?;
    if path.is_empty() {
        return None;
    }
    Some((path, key))
}

/// Kubernetes' `ConvertDownwardAPIFieldLabel` for API version `v1`.
fn convert_field_label(version: &str, label: &str) -> Result<String, String> {
    if version != "v1" {
        return Err(format!("unsupported pod version: {version}"));
    }
    if let Some((path, _)) = split_subscripted(label) {
        return match path {
            "metadata.annotations" | "metadata.labels" => Ok(label.to_owned()),
            _ => Err(format!("field label does not support subscript: {label}")),
        };
    }
    match label {
        "metadata.annotations"
        | "metadata.labels"
        | "metadata.name"
        | "metadata.namespace"
        | "metadata.uid"
        | "spec.nodeName"
        | "spec.restartPolicy"
        | "spec.serviceAccountName"
        | "spec.schedulerName"
        | "status.phase"
        | "status.hostIP"
        | "status.hostIPs"
        | "status.podIP"
        | "status.podIPs" => Ok(label.to_owned()),
        "spec.host" => Ok("spec.nodeName".to_owned()),
        _ => Err(format!("field label not supported: {label}")),
    }
}

fn validate_object_field_selector(
    selector: &ObjectFieldSelector,
    allowed: &[&str],
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    // An empty apiVersion is defaulted to v1 by the API server.
    let version = selector
        .api_version
        .as_deref()
        .filter(|v| !v.is_empty())
        .unwrap_or("v1");
    if selector.field_path.is_empty() {
        errs.push(FieldError::required(path.child("fieldPath"), ""));
        return;
    }
    let internal = match convert_field_label(version, &selector.field_path) {
        Ok(internal) => internal,
        Err(e) => {
            errs.push(FieldError::invalid(
                path.child("fieldPath"),
                selector.field_path.as_str(),
                format!("error converting fieldPath: {e}"),
            ));
            return;
        }
    };
    if let Some((field, key)) = split_subscripted(&internal) {
        match field {
            "metadata.annotations" => validate_qualified_name(&key.to_lowercase(), path, errs),
            "metadata.labels" => validate_qualified_name(key, path, errs),
            other => errs.push(FieldError::invalid(
                path.clone(),
                other,
                "does not support subscript",
            )),
        }
    } else if !allowed.contains(&internal.as_str()) {
        errs.push(FieldError::not_supported(
            path.child("fieldPath"),
            internal.as_str(),
            allowed,
        ));
    }
}

fn validate_volume_mounts(
    container: &Container,
    volumes: &BTreeSet<String>,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let mut mount_points = BTreeSet::new();
    for (i, mount) in container.volume_mounts.iter().enumerate() {
        let m_path = path.index(i);
        if mount.name.is_empty() {
            errs.push(FieldError::required(m_path.child("name"), ""));
        }
        if !volumes.contains(&mount.name) {
            errs.push(FieldError::not_found(
                m_path.child("name"),
                mount.name.as_str(),
            ));
        }
        if mount.mount_path.is_empty() {
            errs.push(FieldError::required(m_path.child("mountPath"), ""));
        }
        if !mount_points.insert(mount.mount_path.as_str()) {
            errs.push(FieldError::invalid(
                m_path.child("mountPath"),
                mount.mount_path.as_str(),
                "must be unique",
            ));
        }
        if let Some(sub_path) = mount.sub_path.as_deref().filter(|s| !s.is_empty()) {
            // Upstream reports this at the list's path, without the index.
            validate_local_descending_path(sub_path, &path.child("subPath"), errs);
        }
    }
}

// ---------------------------------------------------------------------------------------
// Resources

fn is_native_resource(name: &str) -> bool {
    !name.contains('/') || name.contains("kubernetes.io/")
}

fn is_huge_pages(name: &str) -> bool {
    name.starts_with("hugepages-")
}

fn is_extended_resource(name: &str) -> bool {
    if is_native_resource(name) || name.starts_with("requests.") {
        return false;
    }
    super::meta::qualified_name_errors(&format!("requests.{name}")).is_empty()
}

fn validate_resource_name(name: &str, path: &FieldPath, errs: &mut Vec<FieldError>) {
    validate_qualified_name(name, path, errs);
    if !name.contains('/') {
        let standard =
            matches!(name, "cpu" | "memory" | "ephemeral-storage") || is_huge_pages(name);
        if !standard {
            errs.push(FieldError::invalid(
                path.clone(),
                name,
                "must be a standard resource for containers",
            ));
        }
    } else if !is_native_resource(name) && !is_extended_resource(name) {
        errs.push(FieldError::invalid(
            path.clone(),
            name,
            "doesn't follow extended resource name standard",
        ));
    }
}

/// Checks one quantity; returns it when it parses.
fn validate_quantity(
    name: &str,
    quantity: &Quantity,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) -> Option<ParsedQuantity> {
    let parsed = match parse_quantity(&quantity.0) {
        Ok(parsed) => parsed,
        Err(msg) => {
            errs.push(FieldError::invalid(path.clone(), quantity.0.as_str(), msg));
            return None;
        }
    };
    if parsed.is_negative() {
        errs.push(FieldError::invalid(
            path.clone(),
            parsed.canonical(),
            "must be greater than or equal to 0",
        ));
    }
    if is_extended_resource(name) && !parsed.is_integer() {
        errs.push(FieldError::invalid(
            path.clone(),
            parsed.canonical(),
            "must be an integer",
        ));
    }
    Some(parsed)
}

fn validate_resources(
    resources: &ResourceRequirements,
    path: &FieldPath,
    errs: &mut Vec<FieldError>,
) {
    let lim_path = path.child("limits");
    let req_path = path.child("requests");
    let mut limits: BTreeMap<&str, ParsedQuantity> = BTreeMap::new();
    for (name, quantity) in &resources.limits {
        let q_path = lim_path.key(name);
        validate_resource_name(name, &q_path, errs);
        if let Some(parsed) = validate_quantity(name, quantity, &q_path, errs) {
            limits.insert(name.as_str(), parsed);
        }
    }
    for (name, quantity) in &resources.requests {
        let q_path = req_path.key(name);
        validate_resource_name(name, &q_path, errs);
        let Some(request) = validate_quantity(name, quantity, &q_path, errs) else {
            continue;
        };
        let overcommit_allowed = is_native_resource(name) && !is_huge_pages(name);
        if let Some(limit) = limits.get(name.as_str()) {
            let order = request.compare(limit);
            if order != Ordering::Equal && !overcommit_allowed {
                errs.push(FieldError::invalid(
                    req_path.clone(),
                    request.canonical(),
                    format!("must be equal to {name} limit of {}", limit.canonical()),
                ));
            } else if order == Ordering::Greater {
                errs.push(FieldError::invalid(
                    req_path.clone(),
                    request.canonical(),
                    format!(
                        "must be less than or equal to {name} limit of {}",
                        limit.canonical()
                    ),
                ));
            }
        } else if !overcommit_allowed && !resources.limits.contains_key(name) {
            errs.push(FieldError::required(
                lim_path.clone(),
                "Limit must be set for non overcommitable resources",
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Quantities

const QUANTITY_FORMAT_ERROR: &str =
    "quantities must match the regular expression '^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$'";
const QUANTITY_SUFFIX_ERROR: &str = "unable to parse quantity's suffix";

/// How a quantity is written, which decides how Kubernetes prints it back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum QuantityFormat {
    DecimalSi,
    BinarySi,
    DecimalExponent,
}

/// A parsed quantity: `mantissa × 10^exp10 × 1024^exp1024`, with a sign.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ParsedQuantity {
    negative: bool,
    mantissa: u128,
    exp10: i32,
    exp1024: u32,
    format: QuantityFormat,
}

/// Largest mantissa kept exactly (38 digits fit in a u128).
const MAX_MANTISSA_DIGITS: usize = 38;

/// Parses a quantity as Kubernetes' `resource.ParseQuantity` does.
pub(crate) fn parse_quantity(s: &str) -> Result<ParsedQuantity, &'static str> {
    if s.is_empty() {
        return Err(QUANTITY_FORMAT_ERROR);
    }
    let bytes = s.as_bytes();
    let mut pos = 0;
    let mut negative = false;
    match bytes.first() {
        Some(b'-') => {
            negative = true;
            pos = 1;
        }
        Some(b'+') => pos = 1,
        _ => {}
    }
    let digits_from = |start: usize| {
        bytes.get(start..).map_or(0, |rest| {
            rest.iter().take_while(|b| b.is_ascii_digit()).count()
        })
    };
    let int_len = digits_from(pos);
    let int_part = s.get(pos..pos + int_len).unwrap_or_default();
    pos += int_len;
    let mut frac_part = "";
    if bytes.get(pos) == Some(&b'.') {
        pos += 1;
        let frac_len = digits_from(pos);
        frac_part = s.get(pos..pos + frac_len).unwrap_or_default();
        pos += frac_len;
    }
    let suffix_start = pos;
    while bytes.get(pos).is_some_and(|b| b"eEinumkKMGTP".contains(b)) {
        pos += 1;
    }
    if matches!(bytes.get(pos), Some(b'-' | b'+')) {
        pos += 1;
    }
    pos += digits_from(pos);
    if pos != bytes.len() {
        return Err(QUANTITY_FORMAT_ERROR);
    }
    let suffix = s.get(suffix_start..).unwrap_or_default();
    let (exp10_suffix, exp1024, format) = match suffix {
        "" => (0, 0, QuantityFormat::DecimalSi),
        "n" => (-9, 0, QuantityFormat::DecimalSi),
        "u" => (-6, 0, QuantityFormat::DecimalSi),
        "m" => (-3, 0, QuantityFormat::DecimalSi),
        "k" => (3, 0, QuantityFormat::DecimalSi),
        "M" => (6, 0, QuantityFormat::DecimalSi),
        "G" => (9, 0, QuantityFormat::DecimalSi),
        "T" => (12, 0, QuantityFormat::DecimalSi),
        "P" => (15, 0, QuantityFormat::DecimalSi),
        "E" => (18, 0, QuantityFormat::DecimalSi),
        "Ki" => (0, 1, QuantityFormat::BinarySi),
        "Mi" => (0, 2, QuantityFormat::BinarySi),
        "Gi" => (0, 3, QuantityFormat::BinarySi),
        "Ti" => (0, 4, QuantityFormat::BinarySi),
        "Pi" => (0, 5, QuantityFormat::BinarySi),
        "Ei" => (0, 6, QuantityFormat::BinarySi),
        other => {
            let exp = other
                .strip_prefix(['e', 'E'])
                .filter(|rest| !rest.is_empty())
                .and_then(|rest| rest.parse::<i64>().ok())
                .ok_or(QUANTITY_SUFFIX_ERROR)?;
            let exp = i32::try_from(exp.clamp(-1_000_000, 1_000_000)).unwrap_or_default();
            (exp, 0, QuantityFormat::DecimalExponent)
        }
    };
    // Mantissa from all digits, without leading zeros; beyond 38 digits the rest only
    // scales the value.
    let all_digits = format!("{int_part}{frac_part}");
    let significant = all_digits.trim_start_matches('0');
    let kept = significant
        .get(..MAX_MANTISSA_DIGITS)
        .unwrap_or(significant);
    let dropped = significant.len() - kept.len();
    let mantissa: u128 = if kept.is_empty() {
        0
    } else {
        kept.parse().map_err(|_| QUANTITY_FORMAT_ERROR)?
    };
    let frac_len = i32::try_from(frac_part.len()).unwrap_or(i32::MAX);
    let dropped = i32::try_from(dropped).unwrap_or(i32::MAX);
    let exp10 = exp10_suffix
        .saturating_sub(frac_len)
        .saturating_add(dropped);
    let mut q = ParsedQuantity {
        negative: negative && mantissa != 0,
        mantissa,
        exp10,
        exp1024,
        format,
    };
    q.normalize();
    Ok(q)
}

fn pow10(n: u32) -> Option<u128> {
    10u128.checked_pow(n)
}

impl ParsedQuantity {
    fn normalize(&mut self) {
        if self.mantissa == 0 {
            self.exp10 = 0;
            return;
        }
        while self.mantissa.is_multiple_of(10) {
            self.mantissa /= 10;
            self.exp10 = self.exp10.saturating_add(1);
        }
    }

    fn is_negative(&self) -> bool {
        self.negative
    }

    /// The value as `mantissa × 10^exp10` with the binary factor folded in, when it fits.
    fn decimal(&self) -> Option<(u128, i32)> {
        let factor = 1024u128.checked_pow(self.exp1024)?;
        Some((self.mantissa.checked_mul(factor)?, self.exp10))
    }

    /// Whether the value is a whole number (Kubernetes: its milli-value, rounded up, is a
    /// multiple of 1000).
    fn is_integer(&self) -> bool {
        if self.mantissa == 0 || self.exp10 >= 0 {
            return true;
        }
        let Some((m, e)) = self.decimal() else {
            return false;
        };
        // Rounded up to thousandths, then a multiple of 1000.
        let neg_exp = e.unsigned_abs();
        if neg_exp <= 3 {
            let Some(milli) = pow10(3 - neg_exp).and_then(|p| m.checked_mul(p)) else {
                return false;
            };
            return milli % 1000 == 0;
        }
        let Some(div) = pow10(neg_exp - 3) else {
            return false;
        };
        let mut milli = m / div;
        if m % div != 0 && !self.negative {
            milli += 1;
        }
        milli % 1000 == 0
    }

    fn magnitude_cmp(&self, other: &ParsedQuantity) -> Ordering {
        if let (Some((ma, ea)), Some((mb, eb))) = (self.decimal(), other.decimal()) {
            if ma == 0 || mb == 0 {
                return ma.cmp(&mb);
            }
            let low = ea.min(eb);
            let scale = |m: u128, e: i32| {
                u32::try_from(e - low)
                    .ok()
                    .and_then(pow10)
                    .and_then(|p| m.checked_mul(p))
            };
            if let (Some(a), Some(b)) = (scale(ma, ea), scale(mb, eb)) {
                return a.cmp(&b);
            }
        }
        // Very large or very different values: compare by logarithm.
        self.log10().total_cmp(&other.log10())
    }

    #[allow(clippy::cast_precision_loss)]
    fn log10(&self) -> f64 {
        if self.mantissa == 0 {
            return f64::NEG_INFINITY;
        }
        (self.mantissa as f64).log10()
            + f64::from(self.exp10)
            + f64::from(self.exp1024) * 1024f64.log10()
    }

    /// Compares two quantities by value.
    fn compare(&self, other: &ParsedQuantity) -> Ordering {
        match (self.negative, other.negative) {
            (false, true) => Ordering::Greater,
            (true, false) => Ordering::Less,
            (false, false) => self.magnitude_cmp(other),
            (true, true) => other.magnitude_cmp(self),
        }
    }

    /// The quantity as Kubernetes prints it (`Quantity.String()`): `1500m`, `1k`, `1Gi`.
    fn canonical(&self) -> String {
        if self.mantissa == 0 {
            return "0".to_owned();
        }
        let sign = if self.negative { "-" } else { "" };
        match self.format {
            QuantityFormat::BinarySi => {
                if let Some(s) = self.canonical_binary() {
                    return format!("{sign}{s}");
                }
                self.canonical_decimal(false)
            }
            QuantityFormat::DecimalSi => self.canonical_decimal(false),
            QuantityFormat::DecimalExponent => self.canonical_decimal(true),
        }
    }

    fn canonical_binary(&self) -> Option<String> {
        let (m, e) = self.decimal()?;
        // Round up to a whole number of units.
        let whole = if e >= 0 {
            m.checked_mul(pow10(e.unsigned_abs())?)?
        } else {
            let div = pow10(e.unsigned_abs())?;
            m / div + u128::from(m % div != 0)
        };
        if whole < 1024 {
            return None;
        }
        let mut value = whole;
        let mut power = 0;
        while power < 6 && value % 1024 == 0 {
            value /= 1024;
            power += 1;
        }
        let suffix = ["", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei"]
            .get(power)
            .copied()
            .unwrap_or_default();
        Some(format!("{value}{suffix}"))
    }

    fn canonical_decimal(&self, exponent_form: bool) -> String {
        let sign = if self.negative { "-" } else { "" };
        let Some((m, e)) = self.decimal() else {
            return format!("{sign}{}e{}", self.mantissa, self.exp10);
        };
        let mut m = m;
        let mut e = e;
        while m % 10 == 0 && m != 0 {
            m /= 10;
            e = e.saturating_add(1);
        }
        // Below nano, Kubernetes rounds up to whole nanos.
        if e < -9 {
            let Some(div) = u32::try_from(-9 - e).ok().and_then(pow10) else {
                return format!("{sign}1n");
            };
            m = m / div + u128::from(m % div != 0);
            e = -9;
        }
        // The exponent, rounded down to a multiple of 3 (at most 18 for SI suffixes).
        let mut exp3 = e.div_euclid(3) * 3;
        if !exponent_form {
            exp3 = exp3.min(18);
        }
        let shift = u32::try_from(e - exp3).unwrap_or_default();
        let shown = pow10(shift).and_then(|p| m.checked_mul(p)).map_or_else(
            || format!("{m}{}", "0".repeat(shift as usize)),
            |v| v.to_string(),
        );
        let suffix = if exponent_form {
            if exp3 == 0 {
                String::new()
            } else {
                format!("e{exp3}")
            }
        } else {
            match exp3 {
                -9 => "n",
                -6 => "u",
                -3 => "m",
                0 => "",
                3 => "k",
                6 => "M",
                9 => "G",
                12 => "T",
                15 => "P",
                _ => "E",
            }
            .to_owned()
        };
        format!("{sign}{shown}{suffix}")
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn canon(s: &str) -> String {
        parse_quantity(s).unwrap().canonical()
    }

    #[test]
    fn quantities_parse_and_print_as_kubernetes_prints_them() {
        assert_eq!(canon("500m"), "500m");
        assert_eq!(canon("0.5"), "500m");
        assert_eq!(canon("1000m"), "1");
        assert_eq!(canon("1000"), "1k");
        assert_eq!(canon("1.5"), "1500m");
        assert_eq!(canon("1Gi"), "1Gi");
        assert_eq!(canon("1024Mi"), "1Gi");
        assert_eq!(canon("1.5Gi"), "1536Mi");
        assert_eq!(canon("512"), "512");
        assert_eq!(canon("1e3"), "1e3");
        assert_eq!(canon("0"), "0");
        assert_eq!(canon("-1"), "-1");
        assert_eq!(canon("1n"), "1n");
        assert_eq!(canon("0.0000000001"), "1n");
        assert_eq!(parse_quantity("1x"), Err(QUANTITY_FORMAT_ERROR));
        assert_eq!(parse_quantity(""), Err(QUANTITY_FORMAT_ERROR));
        assert_eq!(parse_quantity("1.2.3"), Err(QUANTITY_FORMAT_ERROR));
        assert_eq!(parse_quantity("1Ki5"), Err(QUANTITY_SUFFIX_ERROR));
        assert_eq!(parse_quantity("1e"), Err(QUANTITY_SUFFIX_ERROR));
        assert!(parse_quantity("9".repeat(100).as_str()).is_ok());
    }

    #[test]
    fn quantities_compare_by_value() {
        let q = |s| parse_quantity(s).unwrap();
        assert_eq!(q("1").compare(&q("1000m")), Ordering::Equal);
        assert_eq!(q("1Ki").compare(&q("1k")), Ordering::Greater);
        assert_eq!(q("-1").compare(&q("0")), Ordering::Less);
        assert_eq!(q("1e30").compare(&q("1")), Ordering::Greater);
        assert!(q("2").is_integer());
        assert!(!q("0.5").is_integer());
        assert!(q("1000m").is_integer());
    }

    #[test]
    fn field_selectors_convert_like_kubernetes() {
        assert_eq!(
            convert_field_label("v1", "spec.host"),
            Ok("spec.nodeName".to_owned())
        );
        assert!(convert_field_label("v2", "metadata.name").is_err());
        assert_eq!(
            split_subscripted("metadata.annotations['a/b']"),
            Some(("metadata.annotations", "a/b"))
        );
        assert_eq!(split_subscripted("['a']"), None);
    }
}
