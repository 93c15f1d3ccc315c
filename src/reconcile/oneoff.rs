//! One-off containers of `stack run`: a service's container with the
//! caller's overrides, beside (never instead of) the service's replicas.
//!
//! As in Compose: no published ports unless asked (`--service-ports`), no
//! `container_name`, no static addresses or network aliases (they belong to
//! the service's own containers), and no restart policy (a one-off command
//! that ends is done). Its record carries its short id (`run_id`), which keeps
//! it out of every plan: `up` neither scales it down nor reports it as an
//! orphan; `down` removes it with the rest of the stack.
use super::plan::Want;
use std::time::Duration;

use super::container::AnonVolumes;
use super::{Ctx, Error, container, execute};
use crate::model::{RestartPolicy, Service, Stack};
use crate::supervisor::record::{ContainerPaths, ContainerSpec};

/// What the caller of `stack run` changes in the service.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct Overrides {
    pub command: Option<Vec<String>>,
    pub entrypoint: Option<Vec<String>>,
    /// Set after the service's own environment (these win).
    pub environment: Vec<(String, String)>,
    pub user: Option<String>,
    pub working_dir: Option<String>,
    /// Publish the service's ports too (`--service-ports`).
    pub service_ports: bool,
    pub tty: bool,
    pub stdin_open: bool,
}

/// The one-off variant of `base`.
pub fn service(base: &Service, o: &Overrides) -> Service {
    let mut svc = base.clone();
    if let Some(cmd) = &o.command {
        svc.command = Some(cmd.clone());
    }
    if let Some(entry) = &o.entrypoint {
        // The image's CMD goes with its entrypoint (Docker's rule); the
        // service's own command stays unless the caller gave one.
        svc.entrypoint = Some(entry.clone());
    }
    svc.environment.extend(o.environment.iter().cloned());
    if o.user.is_some() {
        svc.user = o.user.clone();
    }
    if o.working_dir.is_some() {
        svc.working_dir = o.working_dir.clone();
    }
    if !o.service_ports {
        svc.ports.clear();
    }
    for net in svc.networks.values_mut() {
        net.aliases.clear();
        net.ipv4_address = None;
        net.ipv6_address = None;
    }
    svc.container_name = None;
    svc.replicas = 1;
    svc.restart = RestartPolicy::No;
    svc.tty = o.tty;
    svc.stdin_open = o.stdin_open;
    svc
}

/// Create one-off container `name` of `svc` (from [`service`]) with short id
/// `run_id`, not started: the stack's slice and networks first, then (with
/// `wait_deps`) until its `depends_on` conditions are met, then the image.
/// With `auto_remove` its record asks the supervisor to remove it once it
/// ended. On error nothing of the container is left.
pub fn create(
    ctx: &Ctx,
    stack: &Stack,
    svc: &Service,
    name: &str,
    run_id: &str,
    wait_deps: bool,
    auto_remove: bool,
) -> Result<(), Error> {
    if ContainerPaths::new(&ctx.roots.lib, name).dir.exists() {
        return Err(Error::Invalid(format!(
            "a container named {name} already exists; choose another --name or remove it (`stack rm`)"
        )));
    }
    execute::prepare(ctx, stack)?;
    if wait_deps {
        execute::wait_for_dependencies(ctx, stack, &svc.name)?;
    }
    let image = container::service_image(ctx, svc)?;
    let want = Want {
        name: name.to_string(),
        service: svc.name.clone(),
        // Not a replica: `exec --index N` and `wait_for_dependencies` never pick it.
        index: 0,
        hash: svc.config_hash(stack),
        config: serde_json::to_value(svc).unwrap_or_default(),
        recreate_with: Vec::new(),
        run_id: Some(run_id.to_string()),
    };
    let peers = execute::stack_containers(ctx, stack);
    container::create(ctx, stack, svc, &want, &peers, &image, false)?;
    if auto_remove {
        mark_auto_remove(ctx, name).inspect_err(|_| {
            let _ = container::remove(ctx, name, Duration::ZERO, AnonVolumes::Remove);
        })?;
    }
    Ok(())
}

/// Set `auto_remove` in the record of the just created (not started) `name`.
fn mark_auto_remove(ctx: &Ctx, name: &str) -> Result<(), Error> {
    let paths = ContainerPaths::new(&ctx.roots.lib, name);
    let io = |source| Error::Io {
        what: format!("recording auto_remove in {}", paths.spec().display()),
        source,
    };
    let mut spec = ContainerSpec::read(&paths)
        .map_err(io)?
        .ok_or_else(|| Error::Invalid(format!("container {name} vanished after its create")))?;
    spec.auto_remove = true;
    spec.write(&paths).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::testing::service as parse;

    #[test]
    fn overrides_apply_and_what_belongs_to_the_service_is_dropped() {
        let base = parse(
            "restart = \"always\"\ncontainer_name = \"fixed\"\nports = [\"8080:80\"]\ncommand = [\"serve\"]\nenvironment = { A = \"1\", B = \"2\" }",
        );
        let o = Overrides {
            command: Some(vec!["sh".into(), "-c".into(), "exit 7".into()]),
            environment: vec![("B".into(), "3".into())],
            user: Some("nobody".into()),
            working_dir: Some("/tmp".into()),
            tty: true,
            ..Default::default()
        };
        let svc = service(&base, &o);
        assert_eq!(
            svc.command.as_deref(),
            Some(&o.command.clone().unwrap()[..])
        );
        assert_eq!(svc.environment["A"], "1");
        assert_eq!(svc.environment["B"], "3", "the caller's -e wins");
        assert_eq!(svc.user.as_deref(), Some("nobody"));
        assert_eq!(svc.working_dir.as_deref(), Some("/tmp"));
        assert!(
            svc.ports.is_empty(),
            "no published ports without --service-ports"
        );
        assert_eq!(svc.container_name, None);
        assert_eq!(svc.restart, RestartPolicy::No);
        assert!(svc.tty && !svc.stdin_open);
        let kept = service(
            &base,
            &Overrides {
                service_ports: true,
                ..Default::default()
            },
        );
        assert_eq!(kept.ports, base.ports);
        assert_eq!(kept.command, base.command, "no COMMAND keeps the service's");
    }

    #[test]
    fn an_entrypoint_keeps_the_services_command_unless_one_is_given() {
        let base = parse("command = [\"x\"]");
        let entry = Some(vec!["/bin/echo".to_string()]);
        let svc = service(
            &base,
            &Overrides {
                entrypoint: entry.clone(),
                ..Default::default()
            },
        );
        assert_eq!(svc.entrypoint, entry);
        assert_eq!(svc.command, Some(vec!["x".to_string()]));
    }
}
