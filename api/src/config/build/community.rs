//! Community: named aliases for BGP communities.
use super::*;

impl Builder<'_> {
    /// Community aliases from every Community object, in one namespace of names.
    pub(super) fn community_aliases(&mut self) -> BTreeMap<String, BgpCommunity> {
        let mut aliases = BTreeMap::new();
        for object in by_name(&self.objects.communities) {
            let name = object.name_any();
            for (i, alias) in object.spec.communities.iter().enumerate() {
                let field = format!("spec.communities[{i}]");
                if alias.name.is_empty() {
                    self.error(
                        COMMUNITY,
                        &name,
                        format!("{field}.name"),
                        "missing alias name",
                    );
                    continue;
                }
                match alias.value.parse::<BgpCommunity>() {
                    Err(reason) => self.error(COMMUNITY, &name, format!("{field}.value"), reason),
                    Ok(_) if aliases.contains_key(&alias.name) => self.error(
                        COMMUNITY,
                        &name,
                        format!("{field}.name"),
                        format!("duplicate definition of community {:?}", alias.name),
                    ),
                    Ok(value) => {
                        aliases.insert(alias.name.clone(), value);
                    }
                }
            }
        }
        aliases
    }
}
