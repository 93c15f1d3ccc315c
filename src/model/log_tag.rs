//! `logging.options.tag`: the tag of a container's log entries, a template
//! with Docker's markers (docs.docker.com/engine/logging/log_tags).
//!
//! Markers: `{{.ID}}` (12 hex digits), `{{.FullID}}` (64), `{{.Name}}` (the
//! container name, `<stack>-<service>-<n>`), `{{.ImageName}}` (the image as
//! the file names it) and `{{.DaemonName}}` (`stack`, where Docker says
//! `docker`); spaces inside the braces are allowed, as in Go templates.
//! Everything else between `{{` and `}}` is an error at load time: a tag that
//! renders differently from Docker's would be worse than none. The template is
//! checked when the file loads ([`check`]) and rendered when the container is
//! created ([`render`]), so the tag is fixed for the container's life.

/// What the markers stand for, for one container.
pub struct TagFields<'a> {
    pub name: &'a str,
    /// 64 hex digits.
    pub full_id: &'a str,
    pub image: &'a str,
}

/// The markers [`render`] knows, for error messages.
pub const MARKERS: &str = "{{.ID}}, {{.FullID}}, {{.Name}}, {{.ImageName}} or {{.DaemonName}}";

/// Ok when every marker of `template` is known; else what is wrong.
pub fn check(template: &str) -> Result<(), String> {
    if template.contains('\0') {
        return Err("a NUL character cannot be part of a tag".into());
    }
    expand(template, None).map(drop)
}

/// `template` with its markers replaced. A template that [`check`] refuses
/// (it cannot reach a container: the file would not have loaded) renders as
/// it is written.
pub fn render(template: &str, fields: &TagFields<'_>) -> String {
    expand(template, Some(fields)).unwrap_or_else(|_| template.to_string())
}

/// Walks `template`, replacing markers when `fields` is given.
fn expand(template: &str, fields: Option<&TagFields<'_>>) -> Result<String, String> {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after.find("}}").ok_or_else(|| {
            format!(
                "`{{{{` at byte {} is never closed with `}}}}`",
                template.len() - rest.len() + open
            )
        })?;
        let marker = after[..close].trim();
        let value = match (marker, fields) {
            (".ID" | ".FullID" | ".Name" | ".ImageName" | ".DaemonName", None) => "",
            (".ID", Some(f)) => &f.full_id[..f.full_id.len().min(12)],
            (".FullID", Some(f)) => f.full_id,
            (".Name", Some(f)) => f.name,
            (".ImageName", Some(f)) => f.image,
            (".DaemonName", Some(_)) => "stack",
            _ => {
                return Err(format!(
                    "unknown marker `{{{{{}}}}}`: expected {MARKERS}",
                    &after[..close]
                ));
            }
        };
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn fields() -> TagFields<'static> {
        TagFields {
            name: "shop-web-1",
            full_id: ID,
            image: "nginx:1.27",
        }
    }

    #[test]
    fn every_marker_is_replaced() {
        let t = "{{.ImageName}}/{{.Name}}/{{.ID}} {{.FullID}} {{.DaemonName}}";
        assert_eq!(
            render(t, &fields()),
            format!("nginx:1.27/shop-web-1/0123456789ab {ID} stack")
        );
    }

    #[test]
    fn text_without_markers_is_kept_as_it_is() {
        assert_eq!(render("billing", &fields()), "billing");
        assert_eq!(render("", &fields()), "");
        assert_eq!(render("a } b }} c", &fields()), "a } b }} c");
    }

    #[test]
    fn spaces_inside_the_braces_are_allowed() {
        assert_eq!(render("x-{{ .Name }}-y", &fields()), "x-shop-web-1-y");
        assert!(check("{{  .ID}}").is_ok());
    }

    #[test]
    fn an_unknown_marker_is_an_error_naming_the_known_ones() {
        let e = check("app/{{.Hostname}}").unwrap_err();
        assert!(e.contains("`{{.Hostname}}`"), "{e}");
        assert!(e.contains("{{.DaemonName}}"), "{e}");
        // Case matters, as in Go templates.
        assert!(check("{{.name}}").is_err());
        // A Go template pipeline is not supported either.
        assert!(check("{{.Name | upper}}").is_err());
    }

    #[test]
    fn an_unclosed_marker_is_an_error() {
        let e = check("ok {{.Name").unwrap_err();
        assert!(e.contains("byte 3"), "{e}");
        assert!(e.contains("never closed"), "{e}");
        assert!(
            check("a\0b").is_err(),
            "a NUL cannot reach the monitor's argv"
        );
    }

    #[test]
    fn render_leaves_a_refused_template_as_written() {
        assert_eq!(render("{{.Nope}}", &fields()), "{{.Nope}}");
    }
}
