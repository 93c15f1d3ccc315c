//! `stack oci` on the real kernel (root required): personality, recursive mount
//! attributes, idmapped mounts and seccomp user notification.
#[path = "oci_bundle/mod.rs"]
mod bundle;
mod common;

use bundle::{Bundle, ok, text};
use serde_json::json;

#[test]
fn personality_linux32_and_flags_apply_to_init_and_exec() {
    let mut b = Bundle::new(&["sh", "-c", "uname -m; cat /proc/self/personality; sleep 30"]);
    b.config["linux"]["personality"] = json!({"domain": "LINUX32", "flags": ["ADDR_NO_RANDOMIZE"]});
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let out = b.oci(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "uname -m; cat /proc/self/personality",
    ]);
    ok(&out);
    assert_eq!(text(&out.stdout), "i686\n00040008\n", "exec'd process");
    ok(&b.oci(&["delete", "--force", &b.id]));

    // The init itself, in the foreground; and the default is the host's.
    b.config["process"]["args"] = json!(["sh", "-c", "uname -m; cat /proc/self/personality"]);
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "i686\n00040008\n");
    b.config["linux"]
        .as_object_mut()
        .unwrap()
        .remove("personality");
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{}\n00000000\n", std::env::consts::ARCH));

    b.config["linux"]["personality"] = json!({"domain": "LINUX", "flags": ["NOPE"]});
    let out = b.verb("create");
    assert!(!out.status.success());
    assert!(text(&out.stderr).contains("NOPE"), "{}", text(&out.stderr));
}

/// `rro` makes a submount of the bind read-only too; plain `ro` does not (the
/// control that shows the test can fail). The submount exists only in a private
/// mount namespace that `stack` runs in (`unshare -m`), so the host is unchanged.
#[test]
fn recursive_read_only_reaches_submounts() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "for f in /data/top /data/sub/x; do touch $f 2>/dev/null && echo rw || echo ro; done; \
         grep ' /data/sub ' /proc/self/mountinfo | cut -d' ' -f6",
    ]);
    let src = b.path().join("src");
    std::fs::create_dir_all(src.join("sub")).unwrap();
    let sub = src.join("sub");
    let wrapper = [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        "mount -t tmpfs stack-rro-test \"$0\" && exec \"$@\"",
        sub.to_str().unwrap(),
    ];
    let run = |b: &Bundle| {
        let out = b.oci_wrapped(
            &wrapper,
            &["run", "--bundle", b.path().to_str().unwrap(), &b.id],
        );
        assert!(out.status.success(), "{}", text(&out.stderr));
        text(&out.stdout)
    };
    let mount = |opts: serde_json::Value| json!([{"destination": "/data", "type": "bind", "source": src, "options": opts}]);
    let base = b.config["mounts"].as_array().unwrap().clone();
    let with = |b: &mut Bundle, opts| {
        let mut m = base.clone();
        m.extend(mount(opts).as_array().unwrap().iter().cloned());
        b.config["mounts"] = json!(m);
    };
    with(&mut b, json!(["rbind", "ro"]));
    assert_eq!(run(&b).lines().take(2).collect::<Vec<_>>(), ["ro", "rw"]);
    with(
        &mut b,
        json!(["rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnoatime"]),
    );
    let out = run(&b);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[..2], ["ro", "ro"], "{out}");
    let opts: Vec<&str> = lines[2].split(',').collect();
    for o in ["ro", "nosuid", "nodev", "noexec", "noatime"] {
        assert!(opts.contains(&o), "submount options {opts:?} lack {o}");
    }
    assert!(!src.join("top").exists() && !sub.join("x").exists());
}

/// A source directory on the host's ext4 (/tmp) with files owned by 0 and 1000.
fn owned_source(b: &Bundle) -> std::path::PathBuf {
    let src = b.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("a"), "a").unwrap();
    std::fs::write(src.join("b"), "b").unwrap();
    std::os::unix::fs::chown(src.join("b"), Some(1000), Some(1000)).unwrap();
    src
}

fn add_mount(b: &mut Bundle, m: serde_json::Value) {
    b.config["mounts"].as_array_mut().unwrap().push(m);
}

#[test]
fn idmapped_mount_with_its_own_mapping_shows_remapped_owners() {
    let mut b = Bundle::new(&["sh", "-c", "stat -c %u:%g /data/a /data/b /plain/a"]);
    let src = owned_source(&b);
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "ro", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 65536}],
               "gidMappings": [{"containerID": 0, "hostID": 5678, "size": 65536}]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "1234:5678\n2234:6678\n0:0\n");
}

/// `idmap` without mappings of its own: the container's user namespace mapping,
/// so host root's files are root's inside (instead of nobody), and files the
/// container writes are owned by host root on disk.
#[test]
fn idmap_uses_the_containers_user_namespace() {
    let mut b = Bundle::new(&[
        "sh",
        "-c",
        "stat -c %u:%g /data/a /data/b /plain/a; touch /data/new && echo wrote",
    ]);
    let src = owned_source(&b);
    // Host root owns the rootfs: unmapped, so the container cannot mkdir there.
    for d in ["data", "plain"] {
        std::fs::create_dir(b.rootfs().join(d)).unwrap();
    }
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "user"}));
    b.config["linux"]["uidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    b.config["linux"]["gidMappings"] = json!([{"containerID": 0, "hostID": 300000, "size": 65536}]);
    add_mount(
        &mut b,
        json!({"destination": "/data", "type": "bind", "source": src, "options": ["rbind", "idmap"]}),
    );
    add_mount(
        &mut b,
        json!({"destination": "/plain", "type": "bind", "source": src, "options": ["rbind"]}),
    );
    let (code, out, err) = b.run();
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "0:0\n1000:1000\n65534:65534\nwrote\n");
    let meta = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(src.join("new")).unwrap());
    assert_eq!(
        meta, 0,
        "written as container root = host root through the idmap"
    );
}

/// The kernel's refusal is a clear create error and leaves nothing behind.
#[test]
fn idmapped_mount_of_an_unsupported_filesystem_is_a_clear_error() {
    let mut b = Bundle::new(&["true"]);
    add_mount(
        &mut b,
        json!({"destination": "/k", "type": "bind", "source": "/sys/kernel", "options": ["bind", "idmap"],
               "uidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}],
               "gidMappings": [{"containerID": 0, "hostID": 1234, "size": 1}]}),
    );
    let out = b.verb("create");
    assert!(!out.status.success());
    let err = text(&out.stderr);
    assert!(
        err.contains("idmapped mount of /sys/kernel") && err.contains("does not support"),
        "{err}"
    );
    assert!(!b.root.path().join(&b.id).exists(), "no state dir left");
    assert!(
        b.cgroup_dirs().iter().all(|d| !d.exists()),
        "no cgroup left"
    );

    // Not a bind mount, and half a mapping: refused before anything happens.
    b.config["mounts"].as_array_mut().unwrap().pop();
    add_mount(
        &mut b,
        json!({"destination": "/t", "type": "tmpfs", "source": "tmpfs", "options": ["idmap"]}),
    );
    let err = text(&b.verb("create").stderr);
    assert!(err.contains("must be bind mounts"), "{err}");
    b.config["mounts"].as_array_mut().unwrap().pop();
    add_mount(
        &mut b,
        json!({"destination": "/t", "type": "bind", "source": "/tmp", "options": ["rbind"],
               "uidMappings": [{"containerID": 0, "hostID": 1, "size": 1}]}),
    );
    let err = text(&b.verb("create").stderr);
    assert!(err.contains("must both be given"), "{err}");
}

/// What the test's seccomp agent saw.
#[derive(Debug)]
enum Agent {
    /// A listener fd arrived with this containerProcessState.
    Connected(serde_json::Value),
    /// A notified syscall (its number), answered "success, 0".
    Answered { nr: i32 },
}

/// A tiny seccomp agent: accepts connections on `listener`, takes the state JSON
/// and the fd of each, and answers every notification with success (0) without
/// running the syscall — so a notified mkdir "succeeds" and creates nothing.
/// Each fd is served until it hangs up (its processes are gone).
fn seccomp_agent(listener: std::os::unix::net::UnixListener, tx: std::sync::mpsc::Sender<Agent>) {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    for conn in listener.incoming() {
        let Ok(conn) = conn else { return };
        let mut buf = vec![0u8; 65536];
        let mut cmsg = nix::cmsg_space!(std::os::fd::RawFd);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let msg = nix::sys::socket::recvmsg::<()>(
            conn.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            nix::sys::socket::MsgFlags::empty(),
        )
        .unwrap();
        let mut fd = None;
        for c in msg.cmsgs().unwrap() {
            if let nix::sys::socket::ControlMessageOwned::ScmRights(fds) = c {
                // SAFETY: an fd received with SCM_RIGHTS is ours.
                fd = Some(unsafe { OwnedFd::from_raw_fd(fds[0]) });
            }
        }
        let n = msg.bytes;
        let state: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        tx.send(Agent::Connected(state)).unwrap();
        let fd = fd.expect("the listener fd came with SCM_RIGHTS");
        let tx = tx.clone();
        std::thread::spawn(move || serve_notifications(fd, tx));
    }
}

fn serve_notifications(fd: std::os::fd::OwnedFd, tx: std::sync::mpsc::Sender<Agent>) {
    use std::os::fd::{AsFd, AsRawFd};
    loop {
        let mut pfd = [nix::poll::PollFd::new(
            fd.as_fd(),
            nix::poll::PollFlags::POLLIN,
        )];
        if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::NONE).is_err() {
            return;
        }
        let ev = pfd[0].revents().unwrap_or(nix::poll::PollFlags::empty());
        if !ev.contains(nix::poll::PollFlags::POLLIN) {
            return; // POLLHUP: no process uses the filter any more.
        }
        // SAFETY: all-zero is a valid seccomp_notif and what NOTIF_RECV requires.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: the ioctl fills req, a valid seccomp_notif.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } != 0 {
            continue; // the task went away before we read it (ENOENT)
        }
        let mut resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: 0,
        };
        // SAFETY: the ioctl reads resp, a valid seccomp_notif_resp.
        unsafe { libc::ioctl(fd.as_raw_fd(), libc::SECCOMP_IOCTL_NOTIF_SEND, &mut resp) };
        let _ = tx.send(Agent::Answered { nr: req.data.nr });
    }
}

#[test]
fn seccomp_notify_sends_the_listener_fd_and_the_agent_answers() {
    let mut b = Bundle::new(&["sh", "-c", "mkdir /byinit; exec sleep 30"]);
    let sock = b.path().join("agent.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || seccomp_agent(listener, tx));
    b.config["linux"]["seccomp"] = json!({
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": sock,
        "listenerMetadata": "test-meta",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}]
    });
    // Guards against a hang only (an agent that never hears from us).
    let next = || {
        rx.recv_timeout(std::time::Duration::from_secs(20))
            .expect("the seccomp agent heard nothing")
    };
    ok(&b.oci(&[
        "run",
        "--detach",
        "--bundle",
        b.path().to_str().unwrap(),
        &b.id,
    ]));
    let init_pid = b.state()["pid"].as_u64().unwrap();
    let Agent::Connected(st) = next() else {
        panic!("the listener fd comes first")
    };
    assert_eq!(st["ociVersion"], "1.2.0");
    assert_eq!(st["fds"], json!(["seccompFd"]));
    assert_eq!(st["pid"].as_u64(), Some(init_pid));
    assert_eq!(st["metadata"], "test-meta");
    assert_eq!(st["state"]["id"], b.id.as_str());
    assert_eq!(st["state"]["status"], "creating");
    let Agent::Answered { nr } = next() else {
        panic!("the init's mkdir is notified")
    };
    assert!([libc::SYS_mkdir, libc::SYS_mkdirat].contains(&nr.into()));

    // exec'd processes get their own filter and listener.
    let out = b.oci(&[
        "exec",
        &b.id,
        "sh",
        "-c",
        "mkdir /made && echo mkdir-ok; test -d /made || echo made-absent; test -d /byinit || echo init-absent",
    ]);
    ok(&out);
    assert_eq!(text(&out.stdout), "mkdir-ok\nmade-absent\ninit-absent\n");
    let Agent::Connected(st) = next() else {
        panic!("exec sends its listener fd")
    };
    assert_eq!(st["state"]["status"], "running");
    assert_ne!(st["pid"].as_u64(), Some(init_pid));
    assert!(matches!(next(), Agent::Answered { .. }));
    ok(&b.oci(&["delete", "--force", &b.id]));
}
