//! Compiles `ferrolb/admin/v1/admin.proto` with protox (no system protoc) into prost
//! messages and tonic services. The messages also serialize to JSON (`ferrolbctl status -o
//! json`), their enums by name as protobuf's JSON mapping writes them.
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "ferrolb/admin/v1/admin.proto";
    println!("cargo:rerun-if-changed={proto}");
    let descriptors = protox::compile([proto], ["."])?;
    let enum_fields = [
        ("Member.state", "member_state"),
        ("Session.state", "session_state"),
        ("BfdSession.state", "bfd_state"),
        ("BfdSession.remote_state", "bfd_state"),
    ];
    let mut builder = tonic_prost_build::configure()
        .type_attribute(".ferrolb.admin.v1", "#[derive(serde::Serialize)]");
    for (field, by) in enum_fields {
        builder = builder.field_attribute(
            format!(".ferrolb.admin.v1.{field}"),
            format!("#[serde(serialize_with = \"crate::json::{by}\")]"),
        );
    }
    builder.compile_fds(descriptors)?;
    Ok(())
}
