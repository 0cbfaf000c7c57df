//! Group, version and plural of a kind, for dynamic API calls.
use ferrolb_api::kind::Kind;
use kube::core::{ApiResource, GroupVersionKind};

pub(super) fn api_resource(kind: Kind) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk(kind.group(), kind.version(), kind.name()),
        &kind.plural(),
    )
}
