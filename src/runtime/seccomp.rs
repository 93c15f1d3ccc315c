//! seccomp: compiled in the parent; the child only calls seccomp(2) on the program.
use oci_spec::runtime::LinuxSeccomp;

use super::Error;

pub(crate) fn compile(_s: &LinuxSeccomp) -> Result<(Vec<libc::sock_filter>, libc::c_uint), Error> {
    Err(Error::Unsupported {
        what: "linux.seccomp".into(),
        hint: "not implemented in this build".into(),
    })
}
